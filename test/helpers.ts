// Helpers shared by the test suites: hyperparameters written as call arguments.
import type { Arg } from '../grammar/ast.ts';
import { parse } from '../grammar/parse.ts';

/** `argsOf('MnistMlp', 'hidden: 16')`: the arguments of `train MnistMlp(hidden: 16) {}`, for elaborate's modelArgs. */
export function argsOf(model: string, args: string): Arg[] {
  const decl = parse(`train ${model}(${args}) {}`, 'args.dl').program.body.stmts[0];
  return decl.kind === 'Train' ? [...(decl.args ?? [])] : [];
}
