// Shared by zarrita_write.mjs and zarrita_read.mjs: finding the zarrita
// installed in the build tree, dtype tables and N-d byte copies.
import * as fs from "node:fs";
import * as path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const HERE = path.dirname(fileURLToPath(import.meta.url));

// zarrita lives in BUILD/node/node_modules (scripts/install-node-deps), not
// next to this script, so it is imported by file path. Its own imports
// (numcodecs, @zarrita/storage) then resolve inside that tree.
export function nodeDir() {
	let candidates = [
		process.env.LB_NODE_DIR,
		process.env.LB_BUILD_DIR && path.join(process.env.LB_BUILD_DIR, "node"),
		path.join(HERE, "..", "..", "build", "node"),
	].filter(Boolean);
	for (let d of candidates) {
		if (fs.existsSync(path.join(d, "node_modules", "zarrita", "package.json"))) {
			return path.resolve(d);
		}
	}
	fail(
		`zarrita is not installed (looked in ${candidates.join(", ")}): ` +
			"run scripts/install-node-deps BUILD_DIR or set LB_NODE_DIR",
	);
}

export async function loadZarrita() {
	let nm = path.join(nodeDir(), "node_modules");
	let imp = (p) => import(pathToFileURL(path.join(nm, p)).href);
	let version = JSON.parse(
		fs.readFileSync(path.join(nm, "zarrita", "package.json"), "utf8"),
	).version;
	return {
		zarr: await imp("zarrita/dist/src/index.js"),
		FileSystemStore: (await imp("@zarrita/storage/dist/src/fs.js")).default,
		Blosc: (await imp("numcodecs/dist/blosc.js")).default,
		version,
	};
}

// A refusal of this tool (bad spec, bad arguments), as opposed to zarrita's
// own errors; both end up as messages.
export class ToolError extends Error {}

export function fail(msg) {
	throw new ToolError(msg);
}

export function die(err) {
	let msg = err instanceof ToolError ? err.message : describe(err);
	process.stderr.write(`${path.basename(process.argv[1])}: ${msg}\n`);
	process.exit(1);
}

export function readJson(arg) {
	let text = arg === "-" ? fs.readFileSync(0, "utf8") : fs.readFileSync(arg, "utf8");
	try {
		return JSON.parse(text);
	} catch (e) {
		fail(`${arg} is not JSON: ${e.message}`);
	}
}

// Error text with its causes: zarrita wraps codec failures in
// CodecPipelineError whose cause holds the real reason.
export function describe(err) {
	let parts = [];
	for (let e = err; e; e = e.cause) {
		if (e instanceof ToolError) parts.push(e.message);
		else parts.push(e instanceof Error ? `${e.name}: ${e.message}` : String(e));
		if (!(e instanceof Error)) break;
	}
	return parts.join(" <- ");
}

export const DTYPES = {
	bool: { size: 1 },
	int8: { size: 1, ctr: Int8Array },
	uint8: { size: 1, ctr: Uint8Array },
	int16: { size: 2, ctr: Int16Array },
	uint16: { size: 2, ctr: Uint16Array },
	int32: { size: 4, ctr: Int32Array },
	uint32: { size: 4, ctr: Uint32Array },
	int64: { size: 8, ctr: BigInt64Array },
	uint64: { size: 8, ctr: BigUint64Array },
	float32: { size: 4, ctr: Float32Array },
	float64: { size: 8, ctr: Float64Array },
};

export function cStrides(shape) {
	let s = new Array(shape.length);
	let step = 1;
	for (let i = shape.length - 1; i >= 0; i--) {
		s[i] = step;
		step *= shape[i];
	}
	return s;
}

export const prod = (a) => a.reduce((x, y) => x * y, 1);

// Copy a box of `shape` elements of `size` bytes: element i (C order) comes
// from src[srcOff + dot(i, srcStride)] and goes to dst[dstOff + dot(i,
// dstStride)] (offsets and strides in elements).
export function copyBox(dst, dstOff, dstStride, src, srcOff, srcStride, shape, size) {
	let rank = shape.length;
	if (rank === 0) {
		dst.set(src.subarray(srcOff * size, (srcOff + 1) * size), dstOff * size);
		return;
	}
	if (prod(shape) === 0) return;
	let idx = new Array(rank).fill(0);
	let last = rank - 1;
	let rowContig = dstStride[last] === 1 && srcStride[last] === 1;
	for (;;) {
		let d = dstOff;
		let s = srcOff;
		for (let k = 0; k < last; k++) {
			d += idx[k] * dstStride[k];
			s += idx[k] * srcStride[k];
		}
		if (rowContig) {
			dst.set(src.subarray(s * size, (s + shape[last]) * size), d * size);
		} else {
			for (let j = 0; j < shape[last]; j++) {
				let so = (s + j * srcStride[last]) * size;
				dst.set(src.subarray(so, so + size), (d + j * dstStride[last]) * size);
			}
		}
		let k = last - 1;
		while (k >= 0 && ++idx[k] === shape[k]) idx[k--] = 0;
		if (k < 0) break;
	}
}
