// Read a Zarr array (v3, sharded too where zarrita can; v2 works as well)
// with zarrita and dump it: the oracle that checks labelbin's v3 outputs.
//
//   node tests/v3/zarrita_read.mjs ARRAY_DIR OUT.bin [--region A:B,C:D,...]
//   node tests/v3/zarrita_read.mjs --batch LIST.json   (or "-" for stdin)
//
// LIST is [{"path", "out", "region"?}, ...]: one process reads many arrays,
// one stdout line each, {"path", "error"} for an array zarrita refuses (exit
// status 1 then). Note that some malformed arrays crash node itself (see
// README.md): read those one at a time.
// OUT.bin receives the array (or the region: half-open ranges per axis, a
// bare "," keeps a whole axis) in C order, little endian, bool as one byte
// 0/1 per element. stdout gets one JSON line: {"shape" (of what was
// written), "array_shape", "dtype", "chunks" (zarrita's read unit: the inner
// chunk shape for a sharded array), "sharded", "fill_value" (as zarrita
// holds it, 64-bit integers as decimal strings), "dimension_names",
// "attributes", "zarrita" (version)}. Exit 1 with zarrita's error (and its
// causes) on stderr when zarrita refuses the array.
//
// Known limits of zarrita 0.7.5 (see README.md): it reads a shard index only
// from the end of the shard, ignores codecs before sharding_indexed, cannot
// read nested sharding, and does not verify crc32c checksums.
import * as fs from "node:fs";
import {
	copyBox,
	cStrides,
	DTYPES,
	describe,
	die,
	fail,
	loadZarrita,
	prod,
	readJson,
} from "./zarrita_common.mjs";

function parseRegion(text, shape) {
	let parts = text.split(",");
	if (parts.length !== shape.length) fail(`--region ${text} has ${parts.length} axes, the array ${shape.length}`);
	return parts.map((p, i) => {
		if (p === "" || p === ":") return [0, shape[i]];
		let m = /^(\d+):(\d+)$/.exec(p);
		if (!m) fail(`--region axis ${i}: "${p}" is not START:STOP`);
		let [a, b] = [Number(m[1]), Number(m[2])];
		if (a > b || b > shape[i]) fail(`--region axis ${i}: ${p} is outside 0:${shape[i]}`);
		return [a, b];
	});
}

async function main() {
	let args = process.argv.slice(2);
	let z = await loadZarrita();
	if (args[0] === "--batch") {
		if (args.length !== 2) fail("usage: zarrita_read.mjs --batch LIST.json|-");
		let failed = 0;
		for (let item of readJson(args[1])) {
			let line;
			try {
				line = await readOne(z, item.path, item.out, item.region ?? null);
			} catch (e) {
				failed++;
				line = { path: item.path, error: describe(e) };
			}
			process.stdout.write(`${JSON.stringify(line)}\n`);
		}
		if (failed) process.exit(1);
		return;
	}
	let region = null;
	let ri = args.indexOf("--region");
	if (ri >= 0) {
		region = args[ri + 1];
		if (region === undefined) fail("--region needs a value");
		args.splice(ri, 2);
	}
	if (args.length !== 2) fail("usage: zarrita_read.mjs ARRAY_DIR OUT.bin [--region A:B,C:D,...]");
	process.stdout.write(`${JSON.stringify(await readOne(z, args[0], args[1], region))}\n`);
}

async function readOne(z, dir, out, region) {
	let { zarr, FileSystemStore, version } = z;
	let arr = await zarr.open(new FileSystemStore(dir), { kind: "array" });
	let dtype = arr.dtype;
	if (!(dtype in DTYPES)) fail(`${dir}: data type ${dtype} is not one this tool dumps`);
	let size = DTYPES[dtype].size;
	let box = region ? parseRegion(region, arr.shape) : arr.shape.map((s) => [0, s]);
	let res = await zarr.get(arr, box.map(([a, b]) => zarr.slice(a, b)));
	let shape = res.shape;
	if (shape.length !== arr.shape.length || shape.some((s, i) => s !== box[i][1] - box[i][0])) {
		fail(`zarrita returned shape ${JSON.stringify(shape)} for region ${JSON.stringify(box)}`);
	}
	// zarrita returns the array in its storage order (a transpose codec gives
	// F-like strides), so copy it into C order.
	let src = new Uint8Array(res.data.buffer, res.data.byteOffset, res.data.byteLength);
	let dst = new Uint8Array(prod(shape) * size);
	copyBox(dst, 0, cStrides(shape), src, 0, res.stride, shape, size);
	if (dtype === "bool") for (let i = 0; i < dst.length; i++) dst[i] = dst[i] ? 1 : 0;
	fs.writeFileSync(out, dst);
	let fill = arr.fillValue;
	return {
		path: dir,
		shape,
		array_shape: arr.shape,
		dtype,
		chunks: arr.chunks,
		sharded: isSharded(dir),
		fill_value: jsonScalar(fill),
		dimension_names: arr.dimensionNames ?? null,
		attributes: arr.attrs,
		zarrita: version,
	};
}

// 64-bit integers as decimal strings, non-finite floats as the spec's names.
function jsonScalar(v) {
	if (typeof v === "bigint") return v.toString();
	if (typeof v === "number" && !Number.isFinite(v)) {
		return Number.isNaN(v) ? "NaN" : v > 0 ? "Infinity" : "-Infinity";
	}
	return v;
}

function isSharded(dir) {
	// Array.chunks is the inner chunk shape for a sharded array and the
	// metadata is not public, so look at zarr.json itself.
	try {
		let meta = JSON.parse(fs.readFileSync(`${dir}/zarr.json`, "utf8"));
		return (meta.codecs ?? []).some((c) => c.name === "sharding_indexed");
	} catch {
		return false;
	}
}

main().catch(die);
