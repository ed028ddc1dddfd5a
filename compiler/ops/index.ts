// Loads every op family so the registry is complete; import this, then use getOp/allOps/inferOp.
import './elementwise.ts';
import './matmul.ts';
import './reduce.ts';
import './sum-squares.ts';
import './cumsum.ts';
import './movement.ts';
import './gather.ts';
import './conv.ts';
import './pool.ts';
import './random.ts';
import './misc.ts';
import './fused.ts';
import './fused-matmul.ts';
import './fused-matmul-columns.ts';
import './fused-foreach.ts';
import './fused-reduce.ts';
import './fused-conv.ts';
import './strided-copy.ts';

export * from './registry.ts';
