// The fusion passes' search helpers (compiler/ir/reach.ts) and the memoized lowering (codegen/kernel.ts memoLowerNode).
import { describe, expect, it } from 'vitest';
import { successors, VisitMarks } from '../compiler/ir/reach.ts';
import { graphUses } from '../compiler/ir/uses.ts';
import { lowerNode, memoLowerNode } from '../compiler/codegen/kernel.ts';
import { f32t, GraphBuilder } from './graph-builder.ts';

describe('successors', () => {
  it('lists each node’s consumers once, across all its outputs', () => {
    const b = new GraphBuilder();
    const x = b.input('x', f32t(4));
    const y = b.op('exp', [x]); // node 0
    const z = b.op('mul', [y, y]); // node 1 reads node 0 twice
    const w = b.op('add', [y, z]); // node 2
    b.op('neg', [w]); // node 3
    const g = b.graph({ w });
    const s = successors(g);
    const of = (k: number) => [...s.next.subarray(s.start[k], s.start[k + 1])].sort();
    expect(of(0)).toEqual([1, 2]);
    expect(of(1)).toEqual([2]);
    expect(of(2)).toEqual([3]);
    expect(of(3)).toEqual([]);
    // the same as graphUses' consumers, deduplicated per node
    const { consumers } = graphUses(g);
    g.nodes.forEach((n, k) => expect(of(k)).toEqual([...new Set(n.outputs.flatMap((v) => consumers.get(v.id) ?? []))].sort()));
  });
});

describe('VisitMarks', () => {
  it('marks each item once per search and forgets every mark when a search begins', () => {
    const marks = new VisitMarks(3);
    marks.begin();
    expect(marks.visit(1)).toBe(true);
    expect(marks.visit(1)).toBe(false);
    expect(marks.has(1)).toBe(true);
    expect(marks.has(0)).toBe(false);
    marks.begin();
    expect(marks.has(1)).toBe(false);
    expect(marks.visit(1)).toBe(true);
  });
});

describe('memoLowerNode', () => {
  it('lowers alike nodes once, and tells apart nodes that differ in type, attributes or repeated inputs', () => {
    const b = new GraphBuilder();
    const x = b.input('x', f32t(4, 8));
    const y = b.input('y', f32t(4, 8));
    const v = b.input('v', f32t(2, 8));
    b.op('add', [x, y]);
    b.op('add', [y, x]); // alike: the same op, types and no repeated input
    b.op('add', [x, x]); // one value read twice: bound once
    b.op('add', [v, v]);
    b.op('reduce_sum', [x], { axes: [1], keepdims: false });
    b.op('reduce_sum', [x], { axes: [0], keepdims: false });
    const [a, alike, twice, smaller, rows, cols] = b.nodes;
    const lower = memoLowerNode();
    expect(lower(alike)).toBe(lower(a));
    for (const n of [twice, smaller, rows, cols]) expect(lower(n)).not.toBe(lower(a));
    expect(lower(rows)).not.toBe(lower(cols));
    for (const n of b.nodes) expect(lower(n)).toEqual(lowerNode(n));
  });
});
