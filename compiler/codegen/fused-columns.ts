// Code generation for fused_matmul_columns: fused_elementwise's kernel over a block's shape, with the matmul product's column blocks computed in front of the body.
//
// Invocation idx computes element idx of every output: row r = idx / w (over a's leading axes, which
// are the product's) and column j = idx % w of each block. Register g is Σ_k a[r, k] * b[k, o_g + j],
// accumulated with one fma per k in increasing k from +0.0 into its own f32, as every matmul kernel
// accumulates (codegen/matmul.ts), so each block has the bits the product's kernel would have stored.
// The body then runs as fused_elementwise's (codegen/fused.ts `fusedPlans` with a prologue), on the
// same opaque operands. Consecutive invocations share a row and read consecutive columns of b, so on a
// GPU a's element is one broadcast read and b's a coalesced one; per invocation the loop is G * k fmas,
// which the pass bounds (optimize/matmul-columns.ts).
//
// Uniform layout: fused_elementwise's header, then `mm` (x: k, y: n, z: w) and `mcol` (the blocks'
// column offsets), then fused_elementwise's fields. Bindings (group 0): 0 the uniform, 1 a, 2 b (both
// read-only), then the body's inputs and the outputs as fused_elementwise binds them.
import type { Node } from '../ir/types.ts';
import type { Dim } from '../shapes/dim.ts';
import { decodeColumns, FUSED_COLUMNS_OP } from '../ops/fused-matmul-columns.ts';
import { uvec } from './elementwise.ts';
import { fusedPlans } from './fused.ts';
import type { KernelPlan } from './kernel.ts';
import { padUniforms } from './kernel.ts';

/** The one dispatch of a fused_matmul_columns node. */
export function columnsPlans(node: Node): KernelPlan[] {
  const cols = decodeColumns(node.attrs);
  if (typeof cols === 'string') throw new Error(cols);
  const [a, b] = node.inputs;
  const k = a.type.shape[a.type.shape.length - 1];
  const n = b.type.shape[1];
  const names = cols.offsets.map((_, g) => `mm${g}`);
  const stmts = [
    `  let mrow = idx / p.mm.z; // the row of a, over its leading axes`,
    `  let mcolumn = idx % p.mm.z; // the column within a block`,
    `  let mbase = mrow * p.mm.x;`,
    ...names.map((x) => `  var ${x} = 0.0;`),
    ...names.map((_, g) => `  let mb${g} = mcolumn + ${uvec('mcol', g)};`),
    '  for (var mk = 0u; mk < p.mm.x; mk++) {',
    '    let ak = ma[mbase + mk];',
    '    let brow = mk * p.mm.y;',
    ...names.map((x, g) => `    ${x} = fma(ak, mb[brow + mb${g}], ${x});`),
    '  }',
  ];
  const words: Dim[] = [k, n, cols.width, 0, ...padUniforms(cols.offsets)];
  return fusedPlans(node, {
    prologue: {
      op: FUSED_COLUMNS_OP,
      operands: 2,
      declarations: ['@group(0) @binding(1) var<storage, read> ma: array<f32>;', '@group(0) @binding(2) var<storage, read> mb: array<f32>;'],
      names,
      dtypes: names.map(() => 'f32'),
      fields: ['  mm: vec4<u32>, // x: k, y: n (b\'s columns), z: the blocks\' width', `  mcol: array<vec4<u32>, ${Math.ceil(cols.offsets.length / 4)}>, // the blocks' column offsets`],
      words,
      stmts,
      comment: `// the registers ${names.join(', ')}: columns ${cols.offsets.join(', ')} (+ 0 .. ${cols.width - 1}) of a @ b, one fma per k in increasing k`,
    },
  });
}
