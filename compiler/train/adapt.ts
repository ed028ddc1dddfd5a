// The train block's `adapt = [norm, ...]`: each a layer with `mean` and `variance` state (std.nn's Normalization) applied directly to a model input, whose statistics the runtime computes from the training data (runtime/adapt.ts).
import type * as A from '../../grammar/ast.ts';
import { diagnostic, didYouMean, type Diagnostic } from '../diagnostics/diagnostic.ts';
import type { Graph } from '../ir/types.ts';
import type { AdaptDecl } from '../../runtime/program.ts';
import { pathOf } from './plan.ts';
import { shapeToString } from '../shapes/dim.ts';

/**
 * The layers `adapt` names, each with the input it reads and its two state buffers; E0206 at the item
 * for a name that is no layer of the model, a layer without `mean` and `variance` state, and one
 * applied to anything but a model input (or to two different ones).
 */
export function adaptTargets(setting: A.SettingStmt, graph: Graph): { targets: AdaptDecl[]; diagnostics: Diagnostic[] } {
  const diagnostics: Diagnostic[] = [];
  const report = (message: string, span: A.Span, help?: string) => diagnostics.push(diagnostic('E0206', message, span, help ? { help } : {}));
  const items = setting.value.kind === 'List' ? setting.value.items : [setting.value];
  const targets: AdaptDecl[] = [];
  const layers = [...new Set(graph.layerCalls.map((c) => c.path))];
  const inputs = new Map(graph.inputs.map((i) => [i.value.id, i]));
  for (const item of items) {
    const path = pathOf(item);
    if (path === undefined) {
      report('`adapt` lists layers of the model, by name', item.span, 'for example `adapt = [norm]`, `norm` a `layer norm = Normalization(13)`');
      continue;
    }
    const calls = graph.layerCalls.filter((c) => c.path === path);
    if (calls.length === 0) {
      const declared = graph.state.some((s) => s.path.startsWith(`${path}.`)) || graph.params.some((p) => p.path.startsWith(`${path}.`));
      report(declared ? `\`${path}\` is never applied in \`${graph.name}\`: there is no input to adapt it to` : `\`${graph.name}\` has no layer \`${path}\``, item.span, declared ? undefined : didYouMean(path, layers) ?? undefined);
      continue;
    }
    const mean = graph.state.find((s) => s.path === `${path}.mean`);
    const variance = graph.state.find((s) => s.path === `${path}.variance`);
    if (!mean || !variance || mean.value.type.dtype !== 'f32' || variance.value.type.dtype !== 'f32' || mean.value.type.shape.length !== 1) {
      report(`\`${path}\` is a ${calls[0].layer}: \`adapt\` sets a layer's \`mean\` and \`variance\` state (f32[d]) from its input, and it has none`, item.span, 'adapt a std.nn Normalization(d) layer');
      continue;
    }
    const read = calls.map((c) => (c.inputs[0] === undefined ? undefined : inputs.get(c.inputs[0].id)));
    const input = read[0];
    if (read.some((r) => r === undefined) || read.some((r) => r !== input) || input === undefined) {
      const other = read.find((r) => r !== undefined && r !== input);
      report(
        other ? `\`${path}\` is applied to two inputs, \`${input?.name}\` and \`${other.name}\`: \`adapt\` takes one input's statistics` : `\`${path}\` is applied to a value the model computes, not to a model input: \`adapt\` computes the statistics of an input's data`,
        item.span,
        'apply the layer to an input directly (`norm(features)`), or set its statistics from TypeScript after computing them yourself',
      );
      continue;
    }
    const type = input.value.type;
    if (type.dtype !== 'f32' || type.shape.length < 2) {
      report(`\`${path}\` reads \`${input.name}\`: ${type.dtype}${shapeToString(type.shape)}, but \`adapt\` takes per-feature statistics over a batch of f32 examples`, item.span);
      continue;
    }
    targets.push({ layer: path, input: input.name, mean: mean.path, variance: variance.path });
  }
  return { targets, diagnostics };
}
