// Write a Zarr v3 array with zarrita, the independent JavaScript
// implementation the v3 interoperability tests compare labelbin against.
//
//   node tests/v3/zarrita_write.mjs SPEC.json     (or "-" to read stdin)
//
// SPEC is a JSON object, or a list of them (one process for many arrays: a
// failed one then reports {"path", "error"} and the exit status is 1):
//   path              array directory to create (must not hold a zarr.json)
//   shape, chunk_shape, data_type   (bool, int8..uint64, float32, float64)
//   codecs            v3 codec list; default [bytes little]
//   fill_value        any JSON value, or fill_value_json: its exact JSON text
//                     (use that for integers beyond 2^53, which JSON.parse
//                     rounds); written verbatim into zarr.json
//   chunk_key_encoding  default {"name": "default", "configuration":
//                     {"separator": "/"}}; "v2" and "." work too
//   dimension_names, attributes      optional, copied into zarr.json
//   data              file of prod(shape) elements, C order, little endian
//                     (bool: one byte 0/1 per element)
//   write_empty_chunks  default true; false leaves out every chunk whose
//                     elements all equal fill_value bit for bit
//   encoders          "augmented" (default) or "zarrita": see below
//
// zarr.json is written here, not by zarrita.create(), which only knows the
// "default" key encoding and would JSON-round the fill value; chunks are then
// encoded and stored by zarrita.set() on a zarrita Array over that metadata,
// one chunk per call (so chunk layout, key encoding, transpose and the bytes
// codec are zarrita's). zarrita 0.7.5 cannot encode gzip or crc32c ("Unsupported:
// gzip encode") and passes blosc's v3 "shuffle" string to numcodecs, which
// then does no shuffle. With encoders "augmented" this script fills those in:
// gzip by node:zlib, crc32c by the table below, blosc with the shuffle mode
// mapped to numcodecs' number. "encoders" in the report on stdout says which
// implementation encoded each codec.
//
// Prints one JSON line: {"path", "chunks_written", "chunks_skipped",
// "encoders": {codec: implementation}, "zarrita": version}. Exit 1 with a
// message on stderr for anything it cannot do.
import * as fs from "node:fs";
import * as path from "node:path";
import * as zlib from "node:zlib";
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

const U64_MAX = (1n << 64n) - 1n;

const INT_RANGE = {
	int8: [-(1n << 7n), (1n << 7n) - 1n],
	uint8: [0n, (1n << 8n) - 1n],
	int16: [-(1n << 15n), (1n << 15n) - 1n],
	uint16: [0n, (1n << 16n) - 1n],
	int32: [-(1n << 31n), (1n << 31n) - 1n],
	uint32: [0n, (1n << 32n) - 1n],
	int64: [-(1n << 63n), (1n << 63n) - 1n],
	uint64: [0n, U64_MAX],
};

// The fill value's JSON text -> {js: the scalar zarrita fills with, bytes:
// its exact little-endian encoding}. Follows the core spec's fill value
// forms; NaN payloads given as hex keep their bits in `bytes` (JavaScript
// numbers cannot carry them, which only affects padding of edge chunks).
function parseFill(dtype, raw) {
	let size = DTYPES[dtype].size;
	let bytes = new Uint8Array(size);
	let view = new DataView(bytes.buffer);
	let value;
	try {
		value = JSON.parse(raw);
	} catch {
		fail(`fill_value text ${raw} is not JSON`);
	}
	if (dtype === "bool") {
		if (typeof value !== "boolean") fail(`bool fill_value must be true/false, got ${raw}`);
		bytes[0] = value ? 1 : 0;
		return { js: value, bytes };
	}
	if (dtype in INT_RANGE) {
		if (!/^-?[0-9]+$/.test(raw.trim())) fail(`integer fill_value ${raw} is not an integer`);
		let v = BigInt(raw.trim());
		let [lo, hi] = INT_RANGE[dtype];
		if (v < lo || v > hi) fail(`fill_value ${raw} is out of range for ${dtype}`);
		let u = BigInt.asUintN(size * 8, v);
		for (let i = 0; i < size; i++) bytes[i] = Number((u >> BigInt(8 * i)) & 0xffn);
		return { js: size === 8 ? v : Number(v), bytes };
	}
	// float32 / float64
	if (typeof value === "string" && /^0x[0-9a-fA-F]+$/.test(value)) {
		if (value.length !== 2 + 2 * size) fail(`hex fill_value ${value} needs ${2 * size} digits for ${dtype}`);
		let u = BigInt(value);
		for (let i = 0; i < size; i++) bytes[i] = Number((u >> BigInt(8 * i)) & 0xffn);
	} else {
		let x;
		if (typeof value === "number") x = value;
		else if (value === "NaN") x = NaN;
		else if (value === "Infinity") x = Infinity;
		else if (value === "-Infinity") x = -Infinity;
		else fail(`float fill_value ${raw} is not a number, "NaN", "Infinity", "-Infinity" or "0x..."`);
		if (Number.isNaN(x)) {
			// The spec's "NaN": sign 0, mantissa MSB 1, rest 0.
			if (size === 4) view.setUint32(0, 0x7fc00000, true);
			else view.setBigUint64(0, 0x7ff8000000000000n, true);
		} else if (size === 4) view.setFloat32(0, x, true);
		else view.setFloat64(0, x, true);
	}
	let js = size === 4 ? view.getFloat32(0, true) : view.getFloat64(0, true);
	return { js, bytes };
}

// CRC32C (Castagnoli, reflected polynomial 0x82F63B78), appended little
// endian as the crc32c codec specifies.
const CRC32C_TABLE = (() => {
	let t = new Uint32Array(256);
	for (let n = 0; n < 256; n++) {
		let c = n;
		for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
		t[n] = c >>> 0;
	}
	return t;
})();

export function crc32c(bytes) {
	let c = 0xffffffff;
	for (let i = 0; i < bytes.length; i++) c = CRC32C_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
	return (c ^ 0xffffffff) >>> 0;
}

function registerAugmentedEncoders(zarr, Blosc) {
	class GzipEncoder {
		kind = "bytes_to_bytes";
		constructor(level) {
			this.level = level;
		}
		static fromConfig(config) {
			return new GzipEncoder(config?.level ?? 6);
		}
		async encode(bytes) {
			return new Uint8Array(zlib.gzipSync(bytes, { level: this.level }));
		}
		async decode(bytes) {
			return new Uint8Array(zlib.gunzipSync(bytes));
		}
	}
	class Crc32cEncoder {
		kind = "bytes_to_bytes";
		static fromConfig() {
			return new Crc32cEncoder();
		}
		async encode(bytes) {
			let out = new Uint8Array(bytes.length + 4);
			out.set(bytes);
			new DataView(out.buffer).setUint32(bytes.length, crc32c(bytes), true);
			return out;
		}
		async decode(bytes) {
			return bytes.subarray(0, bytes.length - 4);
		}
		computeEncodedSize(n) {
			return n + 4;
		}
	}
	const SHUFFLE = { noshuffle: 0, shuffle: 1, bitshuffle: 2 };
	let bloscV3 = {
		fromConfig(config) {
			let shuffle = config.shuffle;
			if (typeof shuffle === "string") {
				if (!(shuffle in SHUFFLE)) fail(`blosc shuffle ${shuffle} is not noshuffle/shuffle/bitshuffle`);
				shuffle = SHUFFLE[shuffle];
			}
			return Blosc.fromConfig({ ...config, shuffle });
		},
	};
	zarr.registry.set("gzip", async () => GzipEncoder);
	zarr.registry.set("crc32c", async () => Crc32cEncoder);
	zarr.registry.set("blosc", async () => bloscV3);
	return {
		gzip: "node:zlib gzipSync",
		crc32c: "zarrita_write.mjs crc32c",
		blosc: "numcodecs.js Blosc (wasm), v3 shuffle string mapped to its number",
	};
}

function encoderReport(codecs, augmented) {
	let out = {};
	for (let c of codecs) {
		if (augmented[c.name]) out[c.name] = augmented[c.name];
		else if (c.name === "zstd" || c.name === "blosc") out[c.name] = "zarrita (numcodecs.js wasm)";
		else out[c.name] = "zarrita";
	}
	return out;
}

async function writeOne(spec, z, augmented) {
	for (let k of ["path", "shape", "chunk_shape", "data_type", "data"]) {
		if (!(k in spec)) fail(`spec lacks "${k}"`);
	}
	let { shape, data_type: dtype } = spec;
	let chunkShape = spec.chunk_shape;
	if (!(dtype in DTYPES)) fail(`data_type ${dtype} is not one of ${Object.keys(DTYPES).join(", ")}`);
	if (shape.length === 0 || shape.length !== chunkShape.length) fail("shape and chunk_shape need the same rank >= 1");
	let codecs = spec.codecs ?? [{ name: "bytes", configuration: { endian: "little" } }];
	let cke = spec.chunk_key_encoding ?? { name: "default", configuration: { separator: "/" } };

	let rawFill;
	if ("fill_value_json" in spec) rawFill = String(spec.fill_value_json);
	else {
		let v = spec.fill_value ?? (dtype === "bool" ? false : 0);
		if (typeof v === "number" && Number.isInteger(v) && !Number.isSafeInteger(v)) {
			fail(`fill_value ${v} is beyond 2^53 and was rounded by JSON.parse: pass fill_value_json`);
		}
		rawFill = JSON.stringify(v);
	}
	let fill = parseFill(dtype, rawFill);

	let { zarr, FileSystemStore, version } = z;
	let encoders = encoderReport(codecs, augmented);

	let size = DTYPES[dtype].size;
	let n = prod(shape);
	let raw = new Uint8Array(fs.readFileSync(spec.data));
	if (raw.length !== n * size) fail(`${spec.data} holds ${raw.length} bytes, expected ${n * size}`);

	// zarr.json, with the fill value's JSON text spliced in verbatim.
	let meta = {
		zarr_format: 3,
		node_type: "array",
		shape,
		data_type: dtype,
		chunk_grid: { name: "regular", configuration: { chunk_shape: chunkShape } },
		chunk_key_encoding: cke,
		fill_value: "@@FILL@@",
		codecs,
	};
	if (spec.dimension_names !== undefined) meta.dimension_names = spec.dimension_names;
	meta.attributes = spec.attributes ?? {};
	if (fs.existsSync(path.join(spec.path, "zarr.json"))) fail(`${spec.path} already holds a zarr.json`);
	fs.mkdirSync(spec.path, { recursive: true });
	let text = JSON.stringify(meta, null, 2).replace('"@@FILL@@"', rawFill);
	fs.writeFileSync(path.join(spec.path, "zarr.json"), text);

	let store = new FileSystemStore(spec.path);
	let arr = new zarr.Array(store, "/", { ...meta, fill_value: fill.js });
	let Ctr = dtype === "bool" ? zarr.BoolArray : DTYPES[dtype].ctr;

	let grid = shape.map((s, i) => Math.ceil(s / chunkShape[i]));
	let srcStride = cStrides(shape);
	let written = 0;
	let skipped = 0;
	let coord = new Array(shape.length).fill(0);
	let total = prod(grid);
	for (let c = 0; c < total; c++) {
		let start = coord.map((g, i) => g * chunkShape[i]);
		let boxShape = start.map((s, i) => Math.min(chunkShape[i], shape[i] - s));
		let buf = new Uint8Array(prod(boxShape) * size);
		let srcOff = start.reduce((a, s, i) => a + s * srcStride[i], 0);
		copyBox(buf, 0, cStrides(boxShape), raw, srcOff, srcStride, boxShape, size);
		let empty = false;
		if (spec.write_empty_chunks === false) {
			empty = true;
			for (let i = 0; i < buf.length && empty; i++) empty = buf[i] === fill.bytes[i % size];
		}
		if (empty) skipped++;
		else {
			let value = { data: new Ctr(buf.buffer, 0, prod(boxShape)), shape: boxShape, stride: cStrides(boxShape) };
			await zarr.set(arr, start.map((s, i) => zarr.slice(s, s + boxShape[i])), value);
			written++;
		}
		for (let k = coord.length - 1; k >= 0; k--) {
			if (++coord[k] < grid[k]) break;
			coord[k] = 0;
		}
	}
	return { path: spec.path, chunks_written: written, chunks_skipped: skipped, encoders, zarrita: version };
}

async function main() {
	if (process.argv.length !== 3) fail("usage: zarrita_write.mjs SPEC.json|-");
	let specs = readJson(process.argv[2]);
	let batch = Array.isArray(specs);
	if (!batch) specs = [specs];
	let modes = new Set(specs.map((s) => s.encoders ?? "augmented"));
	if (modes.size > 1) fail("all specs of one run need the same \"encoders\"");
	let [mode] = modes;
	let z = await loadZarrita();
	let augmented = {};
	if (mode === "augmented") augmented = registerAugmentedEncoders(z.zarr, z.Blosc);
	else if (mode !== "zarrita") fail(`encoders must be "augmented" or "zarrita", not ${mode}`);
	let failed = 0;
	for (let spec of specs) {
		try {
			let report = await writeOne(spec, z, augmented);
			process.stdout.write(`${JSON.stringify(report)}\n`);
		} catch (e) {
			if (!batch) throw e;
			failed++;
			process.stdout.write(`${JSON.stringify({ path: spec.path, error: describe(e) })}\n`);
		}
	}
	if (failed) process.exit(1);
}

main().catch(die);
