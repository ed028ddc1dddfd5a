// Code generation for fused_matmul_columns: fused_elementwise's kernel over a block's shape, with the matmul product's column blocks computed in front of the body.
//
// An invocation owns one column j of every block and R consecutive rows r of a (over its leading axes,
// which are the product's): per k it reads R values of a and one of b per block for R * G fmas, and
// register g of element (r, j) is Σ_k a[r, k] * b[k, o_g + j], accumulated with one fma per k in
// increasing k from +0.0 into its own f32, as every matmul kernel accumulates (codegen/matmul.ts), so
// each block has the bits the product's kernel would have stored. The body then runs as
// fused_elementwise's (codegen/fused.ts `fusedPlans` with a prologue), on the same opaque operands.
// Consecutive invocations share rows and read consecutive columns of b, so on a GPU a's element is one
// broadcast read and b's a coalesced one. The body runs once per element in a
// loop over the invocation's rows, reading the accumulators (copied to an array) by index: one copy of
// the body keeps the shader small. R is 4 on GPUs, 1 where that grid would have at most UNDERFILLED
// workgroups (an RNN step's few rows: four times the invocations to hide latency), and 16 on CPU
// adapters, where every read costs per lane: on lavapipe (2 cores, Mesa 25) the LSTM classifier's
// predict at T = 32, B = 64 took 118-121 ms with R = 1, 70-78 with 4, 56-59 with 16 (59-67 with 8, 67-72
// with 32), and 58-61 ms unmerged (the product on the subgroup rows kernel, then the cell), in 118 more
// dispatches. A variant sharing a's reads by subgroup broadcasts, as the rows kernel does, measured
// about 109 ms (64 accumulators per lane spill), so there is none. Per invocation the loop is G * k
// fmas, which the pass bounds (optimize/matmul-columns.ts).
//
// Uniform layout: fused_elementwise's header, then `mm` (x: k, y: n, z: w, w: the product's rows) and
// `mcol` (the blocks' column offsets), then fused_elementwise's fields. Bindings (group 0): 0 the
// uniform, 1 a, 2 b (both read-only), then the body's inputs and the outputs as fused_elementwise binds
// them.
import type { Node } from '../ir/types.ts';
import { type Dim, mul } from '../shapes/dim.ts';
import { decodeColumns, FUSED_COLUMNS_OP } from '../ops/fused-matmul-columns.ts';
import { uvec } from './elementwise.ts';
import { type FusedPrologue, fusedPlans } from './fused.ts';
import { ceilDiv, type KernelPlan, padUniforms } from './kernel.ts';

/** Rows of a per invocation: the GPU kernel's, the CPU variants' (more reuse of each b read on a CPU, where reads cost per lane). */
export const COLUMN_ROWS = { gpu: 4, cpu: 16 } as const;
/** The GPU kernel of one row per invocation serves grids of at most this many workgroups at COLUMN_ROWS.gpu rows (an RNN's few rows: four times the invocations). */
const UNDERFILLED = 256;

/** The one dispatch of a fused_matmul_columns node: the GPU kernel (one row per invocation on small grids), and the CPU variant. */
export function columnsPlans(node: Node): KernelPlan[] {
  const cols = decodeColumns(node.attrs);
  if (typeof cols === 'string') throw new Error(cols);
  const [a, b] = node.inputs;
  const k = a.type.shape[a.type.shape.length - 1];
  const n = b.type.shape[1];
  // the product's rows: a's leading axes
  const m = a.type.shape.slice(0, -1).reduce<Dim>((x, d) => mul(x, d), 1);
  const shape = { cols, k, n, m };
  const [gpu] = fusedPlans(node, { prologue: perInvocation(shape, COLUMN_ROWS.gpu) });
  const [one] = fusedPlans(node, { prologue: perInvocation(shape, 1) });
  const [cpu] = fusedPlans(node, { prologue: perInvocation(shape, COLUMN_ROWS.cpu) });
  return [
    {
      ...gpu,
      wide: [{ name: 'columns-rows1', wgsl: one.wgsl, workgroups: one.workgroups, minWorkgroups: 0, maxBaseWorkgroups: UNDERFILLED }],
      cpuVariants: [{ name: `columns-rows${COLUMN_ROWS.cpu}`, wgsl: cpu.wgsl, workgroups: cpu.workgroups }],
    },
  ];
}

interface ColumnsShape {
  readonly cols: { readonly offsets: readonly number[]; readonly width: number };
  readonly k: Dim;
  readonly n: Dim;
  readonly m: Dim;
}

const acc = (r: number, g: number) => `m${r}_${g}`;

/** What every variant shares: the bindings, the uniform and its words, the registers' names. */
function common(shape: ColumnsShape): Pick<FusedPrologue, 'op' | 'operands' | 'declarations' | 'names' | 'dtypes' | 'fields' | 'words'> {
  const names = shape.cols.offsets.map((_, g) => `mm${g}`);
  return {
    op: FUSED_COLUMNS_OP,
    operands: 2,
    declarations: ['@group(0) @binding(1) var<storage, read> ma: array<f32>;', '@group(0) @binding(2) var<storage, read> mb: array<f32>;'],
    names,
    dtypes: names.map(() => 'f32'),
    fields: ["  mm: vec4<u32>, // x: k, y: n (b's columns), z: the blocks' width, w: the product's rows", `  mcol: array<vec4<u32>, ${Math.ceil(shape.cols.offsets.length / 4)}>, // the blocks' column offsets`],
    words: [shape.k, shape.n, shape.cols.width, shape.m, ...padUniforms(shape.cols.offsets)],
  };
}

/** Element `me` of an invocation whose rows start at `mrow`: its flat index, and its registers from the accumulators copied to `macc`. */
function elements(blocks: number, rows: number): FusedPrologue['elements'] {
  return { count: rows, index: '(mrow + me) * p.mm.z + mcolumn', stmts: Array.from({ length: blocks }, (_, g) => `  let mm${g} = macc[me * ${blocks}u + ${g}u];`) };
}

/** `rows` rows per invocation, consecutive invocations along a block's columns: one column of every block for rows mrow .. mrow + rows - 1. */
function perInvocation(shape: ColumnsShape, rows: number): FusedPrologue {
  const blocks = shape.cols.offsets.map((_, g) => g);
  const R = Array.from({ length: rows }, (_, r) => r);
  const stmts = [
    '  let mcolumn = inv % p.mm.z; // the column within a block',
    `  let mrow = (inv / p.mm.z) * ${rows}u; // the first of this invocation's rows of a (over its leading axes)`,
    '  if (mrow >= p.mm.w) { return; }',
    // a row past the last reads the last (its results are not stored)
    ...R.map((r) => `  let ma${r} = min(mrow + ${r}u, p.mm.w - 1u) * p.mm.x;`),
    ...blocks.map((g) => `  let mb${g} = mcolumn + ${uvec('mcol', g)};`),
    ...R.flatMap((r) => blocks.map((g) => `  var ${acc(r, g)} = 0.0;`)),
    '  for (var mk = 0u; mk < p.mm.x; mk++) {',
    '    let brow = mk * p.mm.y;',
    ...blocks.map((g) => `    let b${g} = mb[brow + mb${g}];`),
    ...R.flatMap((r) => [`    let a${r} = ma[ma${r} + mk];`, ...blocks.map((g) => `    ${acc(r, g)} = fma(a${r}, b${g}, ${acc(r, g)});`)]),
    '  }',
    // the body runs in a loop over the rows, which reads the accumulators by index
    `  let macc = array<f32, ${rows * blocks.length}>(${R.flatMap((r) => blocks.map((g) => acc(r, g))).join(', ')});`,
  ];
  return {
    ...common(shape),
    stmts,
    elements: elements(blocks.length, rows),
    invocations: mul(ceilDiv(shape.m, rows), shape.cols.width),
    comment: `// the registers mm*: columns ${shape.cols.offsets.join(', ')} (+ 0 .. ${shape.cols.width - 1}) of a @ b, ${rows} row${rows > 1 ? 's' : ''} per invocation, one fma per k in increasing k`,
  };
}
