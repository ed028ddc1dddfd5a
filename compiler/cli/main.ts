// The `dlc` command line: check, fmt, graph, summary, gradcheck, explain, compile, train, evaluate, predict and sample.
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve as resolvePath } from 'node:path';
import { Command, CommanderError } from 'commander';
import type { Program, TrainDecl } from '../../grammar/ast.ts';
import type { LoadedModule } from '../resolve/resolve.ts';
import { parse } from '../../grammar/parse.ts';
import { endOfLineOf, print } from '../../grammar/printer.ts';
import { CODES, isCode } from '../diagnostics/codes.ts';
import { type Diagnostic, diagnostic } from '../diagnostics/diagnostic.ts';
import { diagnosticToJson, renderDiagnostic } from '../diagnostics/render.ts';
import { SourceText } from '../diagnostics/source.ts';
import { checkSource, parseModelArgs } from '../frontend/check.ts';
import { stdlibModules } from '../frontend/stdlib.ts';
import { printGraph } from '../ir/print.ts';
import type { Graph } from '../ir/types.ts';
import { toDot } from '../report/dot.ts';
import { summarize, weightList } from '../report/summary.ts';
import { compileTraining } from '../frontend/train.ts';
import { gradcheck, type GradcheckRow } from '../autodiff/gradcheck.ts';
import { planTraining } from '../train/plan.ts';
import { withObjectiveLoss } from '../train/training-graph.ts';
import { evaluate, freeVars } from '../shapes/dim.ts';
import { conditionHolds, fittingSizes } from '../../runtime/sizes.ts';
import { paramsWithGradient } from '../autodiff/reaches.ts';
import { defaultSizes, randomFeeds, seededRandom, wholeNumberInputs } from '../interpret/feeds.ts';
import type { Arg } from '../../grammar/ast.ts';
import type { ModelProgram } from '../../runtime/program.ts';
import type { ModelGraphs } from '../codegen/program.ts';
import type { DataSettingError, TrainFlags } from './train.ts';
import type { EvaluateFlags } from './evaluate.ts';
import type { PredictFlags } from './predict.ts';
import type { SampleFlags } from './sample.ts';
import { isFileSystemError, makeFolders, writeRefusal } from './file-errors.ts';
import { writeInPlace } from './write-in-place.ts';
import { decodeSource, readSourceFile, type SourceRead } from './source-file.ts';
// The lowering, the kernel report, the module emitter (ts-morph, that is TypeScript itself), the
// compile cache and the runtime (WebGPU) are imported by the commands that use them, when they run:
// `dlc check`, `dlc fmt` and `dlc --version` start without loading them (test/cli-startup.test.ts).

const ARGS_HELP = 'hyperparameters, as in a call: "hidden: 16" (with --model when the file declares several models)';
const DATA_HELP = "the dataset instead of the train block's: mnist, iris, csv:path[:label], cifar10:dir, uci_har:dir, tiny_shakespeare:file[:context], text:file[:context] (the block's options carry over: a CSV's header and delimiter too when the block's data is a CSV; --header and --delimiter set them)";
const HEADER_HELP = "with --data csv:<file>: whether its first row names the columns, true or false (default: the train block's csv(), else true)";
const DELIMITER_HELP = "with --data csv:<file>: its field delimiter, e.g. ';' or '\\t' (default: the train block's csv(), else ',')";

/** Exit codes: 0 clean, 1 the user's input has errors, 2 the compiler failed. */
export const EXIT_OK = 0;
export const EXIT_USER_ERROR = 1;
export const EXIT_INTERNAL_ERROR = 2;
/** `dlc fmt` only: a file could not be formatted (syntax errors, unreadable, flags that do not go together), as opposed to 1, not formatted. */
export const EXIT_FMT_FAILED = 3;

interface Io {
  readonly out: (text: string) => void;
  readonly err: (text: string) => void;
  /** Told when a reported diagnostic is a compiler bug (E0900): the command then exits with 2, not 1. */
  readonly internal?: () => void;
  /** All of standard input (`dlc check -`, `dlc fmt -`); process.stdin's by default, tests pass their own. */
  readonly readStdin?: () => string | undefined;
}

const defaultIo: Io = {
  out: (t) => process.stdout.write(t.endsWith('\n') ? t : `${t}\n`),
  err: (t) => process.stderr.write(t.endsWith('\n') ? t : `${t}\n`),
};

class Sources {
  private readonly files = new Map<string, SourceText>();
  add(file: string, text: string): SourceText {
    const s = new SourceText(file, text);
    this.files.set(file, s);
    return s;
  }
  get = (file: string): SourceText | undefined => this.files.get(file);
  /** The texts of the files read besides the standard library's (the compiled file and its local imports). */
  local(): Map<string, string> {
    const std = new Set(stdlibModules().sources.keys());
    return new Map([...this.files].filter(([f]) => !std.has(f)).map(([f, s]) => [f, s.text]));
  }
}

/** A .dl file's text (with E0006 when it is not UTF-8); undefined when it cannot be read. */
function readSource(file: string): SourceRead | undefined {
  return readSourceFile(file);
}

/** `cannot read \`file\``, with why: missing, a folder, not permitted. */
function unreadable(file: string): string {
  let why = '';
  try {
    if (!existsSync(file)) why = ': there is no such file';
    else if (statSync(file).isDirectory()) why = ': it is a folder; give the .dl file in it';
    else why = ': permission denied';
  } catch {
    why = '';
  }
  return `error: cannot read \`${file}\`${why}`;
}

/** Reports diagnostics as code frames (stderr) or JSON (stdout); returns how many were errors. */
function report(diagnostics: readonly Diagnostic[], sources: Sources, json: boolean, io: Io): number {
  if (!json) for (const d of diagnostics) io.err(`${renderDiagnostic(d, sources.get)}\n`);
  if (diagnostics.some((d) => d.code === 'E0900')) io.internal?.();
  return diagnostics.filter((d) => d.severity === 'error').length;
}

function moduleLoader(sources: Sources) {
  return (importer: string, path: string): LoadedModule | undefined => {
    const full = resolvePath(dirname(importer), path);
    const read = existsSync(full) ? readSource(full) : undefined;
    if (read === undefined) return undefined;
    sources.add(full, read.text);
    const parsed = parse(read.text, full);
    return read.notUtf8 ? { program: parsed.program, diagnostics: [read.notUtf8] } : parsed;
  };
}

function check(files: string[], options: { json?: boolean; stdinFilepath?: string }, io: Io): number {
  const sources = new Sources();
  for (const [file, text] of stdlibModules().sources) sources.add(file, text);
  const all: Diagnostic[] = [];
  // files that could not be read: with --json, entries of their own (no code, the file at 1:1), so a
  // tool reading stdout does not take `[]` for a clean file
  const unread: object[] = [];
  let missing = 0;
  for (const given of files) {
    // `-` is standard input (an editor's unsaved buffer), named by --stdin-filepath so its imports resolve
    const file = given === '-' ? (options.stdinFilepath ?? '<stdin>') : given;
    const read = given === '-' ? stdinSource(file, io) : readSource(file);
    if (read === undefined) {
      const message = unreadable(file);
      io.err(message);
      const at = { offset: 0, line: 1, column: 1 };
      unread.push({ code: null, severity: 'error', message: message.replace(/^error: /, ''), span: { file, start: at, end: at }, secondary: [] });
      missing++;
      continue;
    }
    const { text, notUtf8 } = read;
    sources.add(file, text);
    if (notUtf8) {
      all.push(notUtf8);
      continue;
    }
    const result = checkSource(text, file, moduleLoader(sources));
    all.push(...result.diagnostics);
    if (result.truncated && !options.json) io.err(`note: \`${file}\` has more errors than the ${result.diagnostics.length} shown`);
  }
  const errors = report(all, sources, options.json ?? false, io);
  if (options.json) io.out(JSON.stringify([...unread, ...all.map((d) => diagnosticToJson(d, sources.get))], null, 2));
  else if (errors === 0 && missing === 0) io.err(`checked ${files.length} file${files.length === 1 ? '' : 's'}: no errors`);
  else {
    const parts = [...(errors > 0 ? [`${errors} error${errors === 1 ? '' : 's'}`] : []), ...(missing > 0 ? [`${missing} file${missing === 1 ? '' : 's'} could not be read`] : [])];
    io.err(parts.join('; '));
  }
  return errors > 0 || missing > 0 ? EXIT_USER_ERROR : EXIT_OK;
}

interface FmtOptions {
  readonly check?: boolean;
  readonly write?: boolean;
  readonly stdinFilepath?: string;
}

/**
 * `dlc fmt`: prints one file (or stdin, `-`) formatted on stdout, or with --write rewrites files, or
 * with --check lists those not formatted. Exit codes: 0 done; 1 (--check) a file is not formatted;
 * 3 a file could not be formatted (syntax errors, unreadable) or the flags do not go together.
 */
function fmt(files: string[], options: FmtOptions, io: Io): number {
  if (options.check && options.write) {
    io.err('error: --check and --write ask for different things: --check reports unformatted files, --write rewrites them');
    return EXIT_FMT_FAILED;
  }
  if (files.includes('-') && files.length > 1) {
    io.err('error: `-` (standard input) must be the only file');
    return EXIT_FMT_FAILED;
  }
  if (files.includes('-') && options.write) {
    io.err('error: --write rewrites files; standard input is formatted to standard output without it');
    return EXIT_FMT_FAILED;
  }
  if (files.length > 1 && !options.check && !options.write) {
    io.err('error: without --write or --check, fmt prints one file to standard output; give one file, or --write to rewrite several in place');
    return EXIT_FMT_FAILED;
  }
  const sources = new Sources();
  let failed = false;
  const unformatted: string[] = [];
  for (const file of files) {
    const stdin = file === '-';
    const name = stdin ? (options.stdinFilepath ?? '<stdin>') : file;
    const read = stdin ? stdinSource(name, io) : readSource(file);
    if (read === undefined) {
      io.err(unreadable(file));
      failed = true;
      continue;
    }
    const { text, notUtf8 } = read;
    sources.add(name, text);
    // the text has U+FFFD for the bytes that are not UTF-8: formatting it would destroy them
    if (notUtf8) {
      report([notUtf8], sources, false, io);
      io.err(`not formatting \`${name}\`: it is not UTF-8`);
      failed = true;
      continue;
    }
    const parsed = parse(text, name);
    if (report(parsed.diagnostics, sources, false, io) > 0) {
      io.err(`not formatting \`${name}\`: it has syntax errors`);
      failed = true;
      continue;
    }
    // the file's own line ending (that of its first line) throughout, comments included, and its byte-order mark
    const formatted = print(parsed.program, { endOfLine: endOfLineOf(text), byteOrderMark: text.startsWith('\uFEFF') });
    if (options.check) {
      if (formatted !== text) unformatted.push(name);
    } else if (options.write) {
      if (formatted !== text) {
        try {
          writeInPlace(file, formatted);
        } catch (e) {
          if (!isFileSystemError(e)) throw e;
          io.err(`error: cannot write \`${file}\`: ${writeRefusal(e)}`);
          failed = true;
        }
      }
    } else if (formatted !== '') {
      io.out(formatted);
    }
  }
  for (const f of unformatted) io.err(`not formatted: ${f}`);
  if (failed) return EXIT_FMT_FAILED;
  return unformatted.length > 0 ? EXIT_USER_ERROR : EXIT_OK;
}

/** All of standard input, as text named `name` (io.readStdin's, else process.stdin's, E0006 when not UTF-8); undefined when it cannot be read. */
function stdinSource(name: string, io: Io): SourceRead | undefined {
  if (io.readStdin) {
    const text = io.readStdin();
    return text === undefined ? undefined : { text };
  }
  let bytes: Buffer;
  try {
    bytes = readFileSync(0);
  } catch {
    return undefined;
  }
  return decodeSource(bytes, name);
}

/** Checks one file and hands its graphs to `show`; diagnostics and exit codes as for `dlc check`. */
function withGraphs(
  file: string,
  options: { model?: string; eval?: boolean; args?: string },
  io: Io,
  show: (g: Graph) => string,
): number {
  const loaded = loadChecked(file, io);
  if (!loaded) return EXIT_USER_ERROR;
  const { text, sources } = loaded;
  const modelArgs = argsFlag(file, text, options, io);
  if (modelArgs === null) return EXIT_USER_ERROR;
  // a model with a train block is shown as that block builds it (`train ResNet(depth: 3)`), not with its defaults
  const result = checkSource(text, file, moduleLoader(sources), { training: !options.eval, ...(modelArgs ? { modelArgs } : {}) });
  if (report(result.diagnostics, sources, false, io) > 0) return EXIT_USER_ERROR;
  const graphs = [...result.graphs.values()].filter((g) => !options.model || g.name === options.model);
  if (graphs.length === 0) {
    io.err(options.model ? `error: \`${file}\` has no model \`${options.model}\`` : `error: \`${file}\` declares no model`);
    return EXIT_USER_ERROR;
  }
  io.out(graphs.map(show).join('\n\n'));
  return EXIT_OK;
}

function loadChecked(file: string, io: Io): { text: string; sources: Sources } | undefined {
  const sources = new Sources();
  for (const [f, text] of stdlibModules().sources) sources.add(f, text);
  const read = readSource(file);
  if (read === undefined) {
    io.err(unreadable(file));
    return undefined;
  }
  sources.add(file, read.text);
  if (read.notUtf8) {
    report([read.notUtf8], sources, false, io);
    return undefined;
  }
  return { text: read.text, sources };
}

function trainGraphs(file: string, options: { model?: string; args?: string }, io: Io): number {
  const loaded = loadChecked(file, io);
  if (!loaded) return EXIT_USER_ERROR;
  const modelArgs = argsFlag(file, loaded.text, options, io);
  if (modelArgs === null) return EXIT_USER_ERROR;
  const { trainings, diagnostics } = compileTraining(loaded.text, file, moduleLoader(loaded.sources), modelArgs ? { modelArgs } : {});
  if (report(diagnostics, loaded.sources, false, io) > 0) return EXIT_USER_ERROR;
  const chosen = trainings.filter((t) => !options.model || t.plan.model === options.model);
  if (chosen.length === 0) {
    io.err(`error: \`${file}\` has no train block${options.model ? ` for \`${options.model}\`` : ''}`);
    return EXIT_USER_ERROR;
  }
  io.out(chosen.flatMap((t) => t.steps.map(printGraph)).join('\n\n'));
  return EXIT_OK;
}

/**
 * `--args` as the arguments of the model they are for: `--model`'s, or the file's only model's;
 * undefined without `--args`, null (reported) when they cannot be read or the model is not clear.
 */
function argsFlag(file: string, text: string, options: { model?: string; args?: string }, io: Io): Map<string, Arg[]> | undefined | null {
  if (!options.args) return undefined;
  const program = parse(text, file).program;
  const declared = program.body.stmts.flatMap((s) => (s.kind === 'Model' ? [s.name.text] : []));
  const model = options.model ?? (declared.length === 1 ? declared[0] : undefined);
  if (!model) {
    io.err(`error: --args needs --model, to say whose hyperparameters they are (\`${file}\` declares ${declared.length === 0 ? 'no model' : declared.map((m) => `\`${m}\``).join(', ')})`);
    return null;
  }
  const args = parseModelArgs(options.args, model, program);
  if (typeof args === 'string') {
    io.err(`error: ${args}`);
    return null;
  }
  return new Map([[model, args]]);
}

/**
 * `dlc gradcheck --size B=2 file.dl`: the list flag (`--size <name=n...>`) took the file along with
 * the sizes. The file is the item without `=`; the rest stay the list. A message when there is no file.
 */
function fileOutOfList(file: string | undefined, list: readonly string[] | undefined, flag: string): { file: string; list: string[] | undefined } | string {
  if (file !== undefined) return { file, list: list ? [...list] : undefined };
  const found = (list ?? []).filter((item) => !item.includes('='));
  if (found.length !== 1) return `missing required argument 'file'${list ? ` (write it before ${flag}, whose values run to the next flag: dlc ... file.dl ${flag} B=2)` : ''}`;
  const rest = (list ?? []).filter((item) => item !== found[0]);
  return { file: found[0], list: rest };
}

/** The most elements of one tensor `dlc gradcheck` interprets (float64: 128 MiB). */
const GRADCHECK_MAX_ELEMENTS = 1 << 24;

function runGradcheck(
  file: string,
  options: { model?: string; args?: string; seed?: string; size?: string[]; tol?: string },
  io: Io,
): number {
  const loaded = loadChecked(file, io);
  if (!loaded) return EXIT_USER_ERROR;
  // each model as its train block and --args make it
  const modelArgs = argsFlag(file, loaded.text, options, io);
  if (modelArgs === null) return EXIT_USER_ERROR;
  const checked = checkSource(loaded.text, file, moduleLoader(loaded.sources), modelArgs ? { modelArgs } : {});
  if (report(checked.diagnostics, loaded.sources, false, io) > 0) return EXIT_USER_ERROR;
  const models = [...checked.graphs.keys()].filter((m) => !options.model || m === options.model);
  if (models.length === 0) {
    io.err(`error: \`${file}\` has no model${options.model ? ` \`${options.model}\`` : ''}`);
    return EXIT_USER_ERROR;
  }
  const seed = Number(options.seed ?? 1);
  const tolerance = Number(options.tol ?? 1e-4);
  const given = new Map<string, number>();
  const flagError = (text: string) => {
    io.err(`error: ${text}`);
    return EXIT_USER_ERROR;
  };
  if (!Number.isSafeInteger(seed) || seed < 0) return flagError(`--seed takes a whole number of 0 or more, not \`${options.seed}\``);
  if (!(tolerance > 0) || !Number.isFinite(tolerance)) return flagError(`--tol takes a positive number, not \`${options.tol}\``);
  for (const item of options.size ?? []) {
    const m = /^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(\d+)\s*$/.exec(item);
    if (!m || Number(m[2]) < 1) return flagError(`--size takes NAME=n with a whole n of 1 or more (B=4), not \`${item}\``);
    given.set(m[1], Number(m[2]));
  }
  let worst = 0;
  let checkedRows = 0;
  for (const model of models) {
    const g = checked.graphs.get(model)!;
    if (g.losses.size === 0) {
      io.err(`note: \`${model}\` has no loss; skipped`);
      continue;
    }
    const known = new Set(g.nodes.flatMap((n) => n.outputs.flatMap((v) => v.type.shape.flatMap(freeVars))).concat(g.inputs.flatMap((i) => i.value.type.shape.flatMap(freeVars))));
    const unknownSize = [...given.keys()].find((k) => !known.has(k));
    if (unknownSize !== undefined) return flagError(`--size ${unknownSize}: ${model} has no size \`${unknownSize}\`${known.size ? `; its sizes are ${[...known].join(', ')}` : ''}`);
    // the default sizes (B=2, others 3), raised where the model's own conditions need it (H=4 for `where H % 4 == 0`)
    const defaults = defaultSizes(g, given);
    const constraints = g.constraints ?? [];
    const brokenAt = (at: ReadonlyMap<string, number>) =>
      constraints.flatMap((c) => {
        if (![...freeVars(c.left), ...freeVars(c.right)].every((n) => at.has(n))) return [];
        const l = evaluate(c.left, at);
        const r = evaluate(c.right, at);
        return conditionHolds(c.op, l, r) ? [] : [{ constraint: c, why: `${l} ${c.op} ${r} is false` }];
      });
    const allBroken = (at: ReadonlyMap<string, number>) => brokenAt(at).map(({ constraint, why }) => `\`${constraint.text}\` (${why})`);
    const breaks = (at: ReadonlyMap<string, number>) => allBroken(at)[0];
    const conditionSizes = new Set(constraints.flatMap((c) => [...freeVars(c.left), ...freeVars(c.right)]));
    const free = [...defaults.keys()].filter((k) => !given.has(k) && conditionSizes.has(k));
    const fitted = fittingSizes(defaults, free, breaks);
    const sizes = fitted.sizes;
    const at = () => [...sizes].map(([k, v]) => `${k}=${v}`).join(' ');
    // sizes no nearby raise could fit: the condition they break
    const first = fitted.broken === undefined ? undefined : brokenAt(sizes)[0];
    if (first !== undefined) {
      // the condition's own code frame, as `dlc check` shows a condition broken by hyperparameters
      const how = free.length > 0 ? `no sizes near the defaults satisfy it: give sizes that do with --size (${free.map((k) => `--size ${k}=n`).join(' ')})` : 'give sizes that satisfy it with --size';
      const broken = diagnostic('E0304', `${model} needs \`${first.constraint.text}\`, which is false at ${at()}`, first.constraint.span, { label: first.why, help: how });
      report([broken], loaded.sources, false, io);
      return EXIT_USER_ERROR;
    }
    const raised = free.filter((k) => sizes.get(k) !== defaults.get(k));
    if (raised.length > 0) io.err(`note: ${raised.map((k) => `${k}=${sizes.get(k)}`).join(' ')} instead of the default ${raised.map((k) => `${k}=${defaults.get(k)}`).join(' ')}, which ${raised.length === 1 ? 'breaks' : 'break'} ${model}'s ${allBroken(defaults).join(', ')}; give other sizes with --size`);
    // the interpreter holds every value in float64: refuse what would not fit rather than run out of memory
    const largest = Math.max(0, ...g.nodes.flatMap((n) => n.outputs.map((v) => v.type.shape.reduce<number>((a, d) => a * evaluate(d, sizes), 1))));
    if (largest > GRADCHECK_MAX_ELEMENTS) return flagError(`${model} has a tensor of ${largest.toLocaleString('en-US')} elements at ${[...sizes].map(([k, v]) => `${k}=${v}`).join(' ')}; gradcheck interprets in float64 and takes at most ${GRADCHECK_MAX_ELEMENTS.toLocaleString('en-US')} (use smaller --args or --size)`);
    const feeds = randomFeeds(g, sizes, seededRandom(seed));
    const whole = [...wholeNumberInputs(g)];
    if (whole.length > 0) io.err(`note: ${whole.map((n) => `\`${n}\``).join(', ')} ${whole.length === 1 ? 'is' : 'are'} cast to integers, so ${whole.length === 1 ? 'it gets' : 'they get'} whole numbers (0 or 1), as integer inputs do`);
    // each loss over every parameter, then each train block step's objective expression (what its optimizer
    // is given: metrics inside it are differentiated too) over the parameters that step updates
    const train = checked.program.body.stmts.find((d): d is TrainDecl => d.kind === 'Train' && d.model.text === model);
    const plan = train ? planTraining(train, g, { checkData: false, checkBatch: false }).plan : undefined;
    const checks = [
      ...[...g.losses.keys()].map((loss) => ({ graph: g, loss, wrt: undefined as readonly string[] | undefined, of: 'parameter' })),
      ...(plan?.steps ?? []).filter((st) => st.objective && st.params.length > 0).map((st) => ({ graph: withObjectiveLoss(g, st), loss: st.loss, wrt: st.params, of: `parameter of the step \`${st.name}\`` })),
    ];
    for (const { graph: cg, loss, wrt, of } of checks) {
      const which = wrt ? { wrt } : {};
      const rows = gradcheck(cg, feeds, { loss, sizes, seed, ...which });
      const width = Math.max(9, ...rows.map((r) => r.name.length));
      io.out(`${model}: d ${loss} / d ${of}, seed ${seed}, sizes ${[...sizes].map(([k, v]) => `${k}=${v}`).join(' ')}`);
      io.out(`${'parameter'.padEnd(width)}  ${'analytic'.padStart(13)}  ${'numeric'.padStart(13)}  ${'rel error'.padStart(9)}`);
      checkedRows += rows.length;
      // a row over the tolerance is measured again with a step 100 times smaller: near a kink of the loss
      // (a relu or max at its corner within the step of this point) the difference quotient measures the
      // kink, and the finer one the gradient; a wrong gradient stays wrong at both steps
      const failing = rows.some((r) => Number.isFinite(r.relError) && r.relError > tolerance);
      const finer = failing ? new Map(gradcheck(cg, feeds, { loss, sizes, seed, step: 1e-8, ...which }).map((r) => [r.name, r])) : new Map<string, GradcheckRow>();
      let kinks = 0;
      for (const coarse of rows) {
        const fine = finer.get(coarse.name);
        const kink = fine !== undefined && coarse.relError > tolerance && Number.isFinite(fine.relError) && fine.relError <= tolerance;
        const r = kink ? fine : coarse;
        if (kink) kinks++;
        io.out(`${r.name.padEnd(width)}  ${r.analytic.toExponential(6).padStart(13)}  ${r.numeric.toExponential(6).padStart(13)}  ${r.relError.toExponential(1).padStart(9)}${kink ? '  (step 1e-8)' : ''}`);
        // a gradient that is zero both ways is exact; every other row counts, and one that is not a number fails
        if (!Number.isFinite(r.analytic) || !Number.isFinite(r.numeric) || !Number.isFinite(r.relError)) worst = Infinity;
        else if (Math.max(Math.abs(r.analytic), Math.abs(r.numeric)) > 1e-12) worst = Math.max(worst, r.relError);
      }
      if (kinks > 0) {
        io.err(`note: ${kinks} of ${rows.length} rows were over the tolerance at step 1e-6 and within it at step 1e-8 (marked): the loss has a kink (a relu or max at its corner) within 1e-6 of these random inputs, where a difference quotient measures the kink, not the gradient`);
      }
      // zero both ways passes, but checks nothing: say which parameters these inputs did not reach
      const zero = rows.filter((r) => Math.max(Math.abs(r.analytic), Math.abs(r.numeric)) <= 1e-12).map((r) => r.name);
      // a parameter no differentiable path joins to the loss (read only through stop_gradient, argmax
      // or a comparison, or not read) has gradient 0 for every input: no seed will exercise it
      const joined = new Set(paramsWithGradient(cg, zero, cg.losses.get(loss)!.id));
      const idle = zero.filter((p) => joined.has(p));
      const apart = zero.filter((p) => !joined.has(p));
      if (apart.length > 0) io.err(`note: ${apart.length} of ${rows.length} parameters have no differentiable path to \`${loss}\` (read only through stop_gradient, argmax or a comparison, or not at all), so their gradient is 0 for any input: ${apart.join(', ')}`);
      if (idle.length > 0) {
        io.err(`warning: ${idle.length} of ${rows.length} parameters not exercised by the random inputs (their gradient is 0 both ways, so nothing was checked): ${idle.join(', ')}`);
        io.err('  other inputs may reach them: try another --seed or other --size; integer inputs are 0 or 1');
      }
    }
  }
  if (checkedRows === 0) {
    io.err(`error: nothing to check: ${models.length === 1 ? `\`${models[0]}\` has` : 'the models have'} no loss with a parameter to differentiate`);
    return EXIT_USER_ERROR;
  }
  io.out(`worst relative error: ${worst.toExponential(2)} (tolerance ${tolerance})`);
  return worst <= tolerance ? EXIT_OK : EXIT_USER_ERROR;
}

/**
 * The chosen programs of `file`, from the compile cache when the file, its local imports and dlc are
 * unchanged since a compile with the same options (compile-cache.ts). Only compiles that reported
 * nothing are stored, so any diagnostic shows every time.
 */
async function compilePrograms(file: string, options: { model?: string; args?: string; data?: string; batch?: string; limit?: string }, io: Io): Promise<ModelProgram[] | undefined> {
  const { entryKey, lookup, store } = await import('./compile-cache.ts');
  const key = entryKey(file, { model: options.model ?? null, args: options.args ?? null, ownData: options.data !== undefined, ownBatch: options.batch !== undefined || options.limit !== undefined });
  const hit = key === undefined ? undefined : lookup(key);
  if (hit) return [...hit.programs];
  let reported = false;
  const compiled = await compileChosen(file, options, { ...io, err: (t) => ((reported = true), io.err(t)) }, false);
  if (compiled && key !== undefined && !reported) await store(key, { programs: compiled.programs }, compiled.sources.local());
  return compiled?.programs;
}

/** compilePrograms, with the IR of each chosen program (`graphs[i]` for `programs[i]`) when `keepGraphs`. */
async function compileChosen(file: string, options: { model?: string; args?: string; data?: string; batch?: string; limit?: string; fuse?: boolean }, io: Io, keepGraphs: boolean): Promise<{ programs: ModelProgram[]; graphs: ModelGraphs[]; sources: Sources } | undefined> {
  const loaded = loadChecked(file, io);
  if (!loaded) return undefined;
  const modelArgs = argsFlag(file, loaded.text, options, io);
  if (modelArgs === null) return undefined;
  const { compileSource } = await import('../frontend/compile.ts');
  const result = compileSource(loaded.text, file, moduleLoader(loaded.sources), { ...(modelArgs ? { modelArgs } : {}), keepGraphs, ownData: options.data !== undefined, ownBatch: options.batch !== undefined || options.limit !== undefined, ...(options.model ? { only: options.model } : {}), ...(options.fuse === false ? { fuse: false } : {}) });
  if (report(result.diagnostics, loaded.sources, false, io) > 0) return undefined;
  const picked = result.programs.map((p, i) => ({ p, g: result.graphs?.[i] })).filter(({ p }) => !options.model || p.model === options.model);
  if (picked.length === 0) {
    io.err(options.model ? `error: \`${file}\` has no model \`${options.model}\`` : `error: \`${file}\` declares no model`);
    return undefined;
  }
  return { programs: picked.map((x) => x.p), graphs: picked.flatMap((x) => (x.g ? [x.g] : [])), sources: loaded.sources };
}

interface ReportFlags {
  report?: string | boolean;
  reportBatch?: string;
  reportSize?: string[];
}

/** The validated `--report` flags, or a message. */
function reportFlags(options: ReportFlags): { format: 'md' | 'html'; batch?: number; sizes: Map<string, number> } | string | undefined {
  if (options.report === undefined || options.report === false) {
    if (options.reportBatch !== undefined || options.reportSize !== undefined) return '--report-batch and --report-size need --report';
    return undefined;
  }
  const format = options.report === true ? 'md' : options.report;
  if (format !== 'md' && format !== 'html') return `--report takes md or html, not \`${format}\``;
  const positive = (text: string) => /^[1-9][0-9]*$/.test(text.trim()) && Number(text) <= 2 ** 31;
  let batch: number | undefined;
  if (options.reportBatch !== undefined) {
    if (!positive(options.reportBatch)) return `--report-batch takes a positive whole number, not \`${options.reportBatch}\``;
    batch = Number(options.reportBatch);
  }
  const sizes = new Map<string, number>();
  for (const s of options.reportSize ?? []) {
    const m = /^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(\S+)\s*$/.exec(s);
    if (!m || !positive(m[2])) return `--report-size takes NAME=n with a positive whole n, e.g. L=64, not \`${s}\``;
    sizes.set(m[1], Number(m[2]));
  }
  return { format, ...(batch !== undefined ? { batch } : {}), sizes };
}

async function compileCommand(file: string, options: { out?: string; js?: boolean; model?: string; args?: string; runtime?: string; fuse?: boolean } & ReportFlags, io: Io): Promise<number> {
  const flags = reportFlags(options);
  if (typeof flags === 'string') {
    io.err(`error: ${flags}`);
    return EXIT_USER_ERROR;
  }
  const compiled = await compileChosen(file, options, io, flags !== undefined);
  if (!compiled) return EXIT_USER_ERROR;
  const { programs } = compiled;
  const { moduleFileName } = await import('../emit/module.ts');
  const { reportSizes } = await import('../report/kernels.ts');
  const unknownSize = flags ? [...flags.sizes.keys()].find((k) => !programs.some((p) => p.sizes.includes(k))) : undefined;
  if (unknownSize !== undefined) {
    io.err(`error: --report-size ${unknownSize}: no model here has a size \`${unknownSize}\`; their sizes are ${[...new Set(programs.flatMap((p) => p.sizes))].join(', ') || 'none'}`);
    return EXIT_USER_ERROR;
  }
  // the reports are built before anything is written, so a failure leaves no files behind
  const reports = flags ? await Promise.all(programs.map((program, i) => kernelReportText(program, compiled.graphs[i], compiled.sources, flags))) : [];
  // report sizes the model refuses (no nearby sizes fit its conditions): said here as well as in the report
  for (const program of flags ? programs : []) {
    const broken = reportSizes(program, flags!.batch, flags!.sizes).broken;
    if (broken !== undefined) io.err(`warning: ${program.model}'s report is for sizes that break its condition ${broken}; give sizes that satisfy it with --report-size NAME=n (and --report-batch n)`);
  }
  const dir = options.out ?? '.';
  // a file system's refusal (not a bug in dlc): one line, exit 1
  const unwritable = (why: string) => {
    io.err(`error: cannot write to \`${dir}\`: ${why}`);
    return EXIT_USER_ERROR;
  };
  if (existsSync(dir) && !statSync(dir).isDirectory()) return unwritable('it is a file, not a folder');
  // two models whose modules would have one name (FooBar and Foo_Bar): the second would replace the first
  const byName = new Map<string, string>();
  for (const p of programs) {
    const name = moduleFileName(p.model);
    const first = byName.get(name);
    if (first !== undefined) {
      io.err(`error: the models ${first} and ${p.model} would both be written to ${join(dir, name)}.ts; rename one, or compile each with --model and its own -o`);
      return EXIT_USER_ERROR;
    }
    byName.set(name, p.model);
  }
  try {
    makeFolders(dir);
    await writeModules(dir, file, programs, reports, options, flags?.format, io);
  } catch (e) {
    if (!isFileSystemError(e)) throw e;
    return unwritable(writeRefusal(e));
  }
  return EXIT_OK;
}

/** Each program's module (TypeScript, or JavaScript and .d.ts) in `dir`, and its kernel report when asked. */
async function writeModules(dir: string, file: string, programs: readonly ModelProgram[], reports: readonly string[], options: { js?: boolean; runtime?: string }, report: 'md' | 'html' | undefined, io: Io): Promise<void> {
  const { emitModule, emitModuleJs, moduleFileName } = await import('../emit/module.ts');
  for (const [i, program] of programs.entries()) {
    const emitOptions = { source: file, ...(options.runtime ? { runtimeImport: options.runtime } : {}) };
    const base = join(dir, moduleFileName(program.model));
    // a module compiled from another .dl file (a second stage training the same model): say it is replaced
    const existing = options.js ? `${base}.js` : `${base}.ts`;
    const from = existsSync(existing) ? /^\/\/ Generated by dlc from (.*) \(model \w+\)\./.exec(readFileSync(existing, 'utf8').slice(0, 2000))?.[1] : undefined;
    if (from !== undefined && resolvePath(from) !== resolvePath(file)) io.err(`note: ${existing} was compiled from ${from}; it is replaced by ${program.model} from ${file}`);
    if (options.js) {
      const { js, dts } = emitModuleJs(program, emitOptions);
      writeFileSync(`${base}.js`, js);
      writeFileSync(`${base}.d.ts`, dts);
      io.err(`wrote ${base}.js and ${base}.d.ts (${program.model} from ${file}: ${program.shaders.length} shaders)`);
    } else {
      writeFileSync(`${base}.ts`, emitModule(program, emitOptions));
      io.err(`wrote ${base}.ts (${program.model} from ${file}: ${program.shaders.length} shaders)`);
    }
    if (report) {
      const path = `${base}.report.${report}`;
      writeFileSync(path, reports[i]);
      io.err(`wrote ${path} (kernel report)`);
    }
  }
}

/** The kernel report of one program: fusion decisions from its IR, dispatch counts before fusion from an unfused lowering. */
async function kernelReportText(program: ModelProgram, graphs: ModelGraphs | undefined, sources: Sources, flags: { format: 'md' | 'html'; batch?: number; sizes: Map<string, number> }): Promise<string> {
  const { lowerModel } = await import('../codegen/program.ts');
  const { buildKernelReport, fusionOf, renderHtml, renderMarkdown } = await import('../report/kernels.ts');
  const unfused = graphs ? lowerModel(graphs, { fuse: false, planMemory: false }).program : undefined;
  const report = buildKernelReport({
    program,
    ...(unfused ? { unfused } : {}),
    ...(graphs ? { fusion: fusionOf(graphs) } : {}),
    ...(flags.batch !== undefined ? { batch: flags.batch } : {}),
    sizes: flags.sizes,
    lineOf: (span) => {
      const text = sources.get(span.file);
      return text ? { file: span.file, line: text.position(span.start).line } : undefined;
    },
  });
  return flags.format === 'html' ? renderHtml(report) : renderMarkdown(report);
}

/** The one trained model of `file` (with --model when it trains several) that `accepts`, compiled; undefined after reporting why not. */
async function trainedModel(file: string, options: { model?: string; args?: string; data?: string }, io: Io, accepts: (p: ModelProgram) => boolean = () => true, what = 'no train block'): Promise<ModelProgram | undefined> {
  const programs = await compilePrograms(file, options, io);
  if (!programs) return undefined;
  const trained = programs.filter((p) => p.training && p.graphs.steps.length > 0 && accepts(p));
  if (trained.length === 1) return trained[0];
  io.err(trained.length === 0 ? `error: \`${file}\` has ${what}${options.model ? ` for \`${options.model}\`` : ''}` : `error: \`${file}\` trains ${trained.map((p) => p.model).join(' and ')}; choose one with --model`);
  return undefined;
}

const fromEpisodes = (p: ModelProgram) => p.training?.settings.env !== undefined;

async function predictCommand(file: string, options: PredictFlags & { model?: string; args?: string }, io: Io): Promise<number> {
  const program = await trainedModel(file, options, io, (p) => !fromEpisodes(p), 'no model trained on data');
  if (!program) return EXIT_USER_ERROR;
  const { predictProgram } = await import('./predict.ts');
  return runReportingErrors(() => predictProgram(program, file, options, { ...io, tty: false }), io, { file, model: program.model });
}

async function sampleCommand(file: string, options: SampleFlags & { model?: string; args?: string }, io: Io): Promise<number> {
  const { canSample, sampleProgram } = await import('./sample.ts');
  const program = await trainedModel(file, options, io, (p) => canSample(p, options), 'no trained model with an i32 token input [B, L] and a next-token output [B, V]');
  if (!program) return EXIT_USER_ERROR;
  return runReportingErrors(() => sampleProgram(program, file, options, { ...io, tty: false }), io);
}

async function evaluateCommand(file: string, options: EvaluateFlags & { model?: string; args?: string; episodes?: string }, io: Io): Promise<number> {
  const program = await trainedModel(file, options, io);
  if (!program) return EXIT_USER_ERROR;
  const evalIo = { ...io, tty: false };
  const { evaluateProgram } = await import('./evaluate.ts');
  const { evaluateOnEpisodes } = await import('./train-episodes.ts');
  return runReportingErrors(() => (fromEpisodes(program) ? evaluateOnEpisodes(program, file, options, evalIo) : evaluateProgram(program, file, options, evalIo)), io, { file, model: program.model });
}

/**
 * Runs a command that trains or evaluates on a device: a training error (bad data, a missing file, a
 * runtime error) is a one-line message and exit 1; a programming error still throws (exit 2 in main).
 */
async function runReportingErrors(run: () => Promise<unknown>, io: Io, at?: { readonly file: string; readonly model: string }): Promise<number> {
  try {
    await run();
    return EXIT_OK;
  } catch (e) {
    const { DataSettingError, TrainError } = await import('./train.ts');
    // the data a train block's setting names: E0207 at that setting
    const framed = e instanceof DataSettingError && at ? dataSettingFrame(e, at.file, at.model) : undefined;
    if (framed !== undefined) {
      io.err(framed);
      return EXIT_USER_ERROR;
    }
    if (e instanceof TrainError || (e instanceof Error && !(e instanceof TypeError) && !(e instanceof RangeError) && !(e instanceof ReferenceError))) {
      io.err(`error: ${e.message}`);
      return EXIT_USER_ERROR;
    }
    throw e;
  }
}

/** A DataSettingError as E0207 in a code frame at the train block's `data` (or `validation`) setting of `model`; undefined where the file no longer has it. */
function dataSettingFrame(e: DataSettingError, file: string, model: string): string | undefined {
  const text = readSource(file)?.text;
  if (text === undefined) return undefined;
  const { program } = parse(text, file);
  const train = program.body.stmts.find((s): s is TrainDecl => s.kind === 'Train' && s.model.text === model);
  const stmt = train?.body.stmts.find((s) => (s.kind === 'Setting' || s.kind === 'SettingBlock') && s.name.text === e.setting);
  if (!stmt) return undefined;
  const sources = new Sources();
  sources.add(file, text);
  const help =
    e.setting === 'data'
      ? 'fix the file or this setting; --data <dataset> reads other data without editing it'
      : e.setting === 'init_from'
        ? 'init_from { path = "..."; rename = ["module.* -> *"]; transpose = ["fc.w"] } renames and transposes what it reads; `dlc summary --weights` lists the names and shapes the model expects'
        : 'fix the file or this setting';
  return renderDiagnostic(diagnostic('E0207', e.message, stmt.span, { help }), sources.get);
}

async function trainCommand(file: string, options: TrainFlags & { model?: string; args?: string }, io: Io): Promise<number> {
  const program = await trainedModel(file, options, io);
  if (!program) return EXIT_USER_ERROR;
  const trainIo = { ...io, tty: Boolean(process.stderr.isTTY) };
  const { trainProgram } = await import('./train.ts');
  const { trainOnEpisodes } = await import('./train-episodes.ts');
  return runReportingErrors(() => (fromEpisodes(program) ? trainOnEpisodes(program, file, options, trainIo) : trainProgram(program, file, options, trainIo)), io, { file, model: program.model });
}

function explain(code: string, io: Io): number {
  const normalized = code.toUpperCase();
  if (!isCode(normalized)) {
    io.err(`error: there is no diagnostic code \`${code}\`; codes look like E0201 (see \`dlc explain --list\`)`);
    return EXIT_USER_ERROR;
  }
  const info = CODES[normalized];
  io.out(`${normalized}: ${info.title}\n\n${info.explanation}`);
  return EXIT_OK;
}

function listCodes(io: Io): number {
  io.out(Object.entries(CODES).map(([code, info]) => `${code}  ${info.title}`).join('\n'));
  return EXIT_OK;
}

/** package.json's version: two folders up from the source, three from a build in dist/. */
const DLC_VERSION: string = (() => {
  for (const up of ['../../package.json', '../../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(up, import.meta.url), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'dlc' && pkg.version) return pkg.version;
    } catch {
      // not there: the next folder up
    }
  }
  return 'unknown';
})();

export function buildProgram(io: Io, setStatus: (code: number) => void): Command {
  const program = new Command();
  program
    .name('dlc')
    .description('Compile .dl deep-learning models to WGSL and a typed TypeScript module')
    .version(DLC_VERSION, '-V, --version', 'print the version of dlc')
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.out(s), writeErr: (s) => io.err(s) })
    // a command's line in the list as its own usage says (gradcheck and compile take `[file]` only so
    // that a file written after a list option's values is found, but need one)
    .configureHelp({ subcommandTerm: (cmd) => `${cmd.name()} ${cmd.usage()}` });
  program
    .command('check')
    .description('report syntax, name, type, shape and training-setup errors in .dl files')
    .argument('<files...>', '.dl files; `-` reads standard input')
    .option('--json', 'print diagnostics as JSON on stdout')
    .option('--stdin-filepath <path>', 'the file that standard input (`-`) holds: names it in diagnostics and resolves its imports')
    .action((files: string[], options: { json?: boolean; stdinFilepath?: string }) => setStatus(check(files, options, io)));
  program
    .command('fmt')
    .description(
      'print a .dl file in canonical format (`-` reads standard input), or rewrite files (--write), or list those not formatted (--check); exit 0 done, 1 not formatted (--check), 3 a file could not be formatted (syntax errors, unreadable) or the flags do not go together',
    )
    .argument('<files...>')
    .option('--check', 'exit 1 when a file is not formatted, without changing it (3 when it has syntax errors)')
    .option('--write', 'rewrite the files in place (a symlink\'s target; mode and hard links kept)')
    .option('--stdin-filepath <path>', 'the name diagnostics give to standard input (`-`)')
    .action((files: string[], options: FmtOptions) => setStatus(fmt(files, options, io)));
  program
    .command('graph')
    .description('print the typed IR of each model (or Graphviz of its layers with --dot)')
    .argument('<file>')
    .option('--dot', 'emit Graphviz of the layer structure with shapes on the edges')
    .option('--model <name>', 'only this model')
    .option('--eval', 'the evaluation variant (dropout off, running statistics)')
    .option('--train', 'the training graphs: forward, backward and optimizer update, one per step')
    .option('--args <hyperparameters>', 'hyperparameters, as in a call: "hidden: 16, depth: 1" (over the train block\'s)')
    .action((file: string, options: { dot?: boolean; model?: string; eval?: boolean; train?: boolean; args?: string }) =>
      setStatus(options.train ? trainGraphs(file, options, io) : withGraphs(file, options, io, options.dot ? toDot : printGraph)),
    );
  program
    .command('gradcheck')
    .description('compare every parameter gradient with central finite differences (float64, seeded)')
    .argument('[file]')
    .usage('[options] <file>')
    .option('--model <name>', 'only this model')
    .option('--args <hyperparameters>', 'hyperparameters, as in a call: "hidden: 16, depth: 1"')
    .option('--size <name=n...>', "sizes of symbolic dimensions, e.g. B=4 T=8 (default B=2, others 3, raised to fit the model's `where`)")
    .option('--seed <n>', 'seed of the inputs, parameters and directions', '1')
    .option('--tol <x>', 'largest acceptable relative error', '1e-4')
    .action((file: string | undefined, options: { model?: string; args?: string; seed?: string; size?: string[]; tol?: string }) => {
      const found = fileOutOfList(file, options.size, '--size');
      if (typeof found === 'string') {
        io.err(`error: ${found}`);
        return setStatus(EXIT_USER_ERROR);
      }
      setStatus(runGradcheck(found.file, { ...options, size: found.list }, io));
    });
  program
    .command('compile')
    .description('compile each model to a typed TypeScript module (WGSL included) that trains and runs on WebGPU')
    .argument('[file]')
    .usage('[options] <file>')
    .option('-o, --out <dir>', 'output directory', '.')
    .option('--js', 'write JavaScript plus a .d.ts instead of TypeScript')
    .option('--model <name>', 'only this model')
    .option('--args <hyperparameters>', ARGS_HELP)
    .option('--runtime <specifier>', 'where the module imports the runtime from', 'dlc/runtime')
    .option('--no-fuse', 'one kernel per primitive op, no fusion: slower, for checking that fused kernels give the same results')
    .option('--report [format]', 'also write <module>.report.md (or html): dispatches before/after fusion, kernels with FLOPs and bytes, peak memory')
    .option('--report-batch <n>', "the batch size B for the report's numbers (default: the train block's batch, 32 if it gives none; 1 without a train block)")
    .option('--report-size <name=n...>', "other symbolic sizes for the report's numbers, e.g. L=64 (default 1, raised to fit the model's where conditions)")
    .action(async (file: string | undefined, options: { out?: string; js?: boolean; model?: string; args?: string; runtime?: string; fuse?: boolean } & ReportFlags) => {
      const found = fileOutOfList(file, options.reportSize, '--report-size');
      if (typeof found === 'string') {
        io.err(`error: ${found}`);
        return setStatus(EXIT_USER_ERROR);
      }
      setStatus(await compileCommand(found.file, { ...options, reportSize: found.list }, io));
    });
  program
    .command('train')
    .description("compile, load the model's data, train on WebGPU with progress, save checkpoints and report test metrics")
    .argument('<file>')
    .option('--model <name>', 'the model to train (when the file trains several)')
    .option('--args <hyperparameters>', ARGS_HELP)
    .option('--data <name>', DATA_HELP)
    .option('--header <true|false>', HEADER_HELP)
    .option('--delimiter <c>', DELIMITER_HELP)
    .option('--epochs <n>', 'epochs instead of the train block\'s')
    .option('--steps <n>', 'training steps instead of the train block\'s (policy updates, for a model trained from episodes of an env)')
    .option('--batch <n>', 'batch size instead of the train block\'s')
    .option('--seed <n>', 'seed of the weights, shuffling and dropout')
    .option('--limit <n>', 'use n examples of the data, a random subset chosen by the seed (quick runs; recorded in the checkpoint)')
    .option('--checkpoint <path>', 'checkpoint file, not a folder (default: the train block\'s, else checkpoints/<Model>.safetensors beside the .dl file); a run locks it (<path>.lock) so a second run on it is refused, and a run without --resume first moves an earlier run\'s files aside as *.previous.safetensors (older ones as *.previous-2.safetensors, ...: nothing is deleted)')
    .option('--resume', 'continue from the checkpoint: weights, optimizer state, step, epoch and early stopping; with no checkpoint yet, start a new run (so a retry wrapper can always pass it), unless an earlier run was moved aside (then it says how to get it back); the data is split as the checkpoint records (its --seed, --limit and --data, with the --header and --delimiter of --data): other values are refused')
    .option('--no-progress', 'plain lines instead of a progress bar')
    .option('--no-early-stopping', "train every epoch, ignoring the train block's early_stopping")
    .option('--profile', 'time each kernel of one training step on the first batch, print where the time goes (by kernel, op and .dl line), and train nothing')
    .action(async (file: string, options: TrainFlags & { model?: string; args?: string }) => setStatus(await trainCommand(file, options, io)));
  /** A command that loads a checkpoint and runs it on a split of the model's data, split as training split it. */
  const onCheckpoint = (name: string, description: string) =>
    program
      .command(name)
      .description(description)
      .argument('<file>')
      .option('--model <name>', 'the model (when the file trains several)')
      .option('--args <hyperparameters>', ARGS_HELP)
      .option('--checkpoint <path>', "the weights (default: the train block's checkpoint, else checkpoints/<Model>.safetensors beside the .dl file)")
      .option('--split <name>', "train, validation or test, split as training split it (default: test, else validation); or all: every example of the data (a new file: --data csv:new.csv), in its order, unsplit")
      .option('--data <name>', DATA_HELP)
      .option('--header <true|false>', HEADER_HELP)
      .option('--delimiter <c>', DELIMITER_HELP)
      .option('--batch <n>', "batch size instead of the train block's")
      .option('--seed <n>', 'the seed training split the data with (default: the one the checkpoint recorded)')
      .option('--limit <n>', 'the --limit training used (default: the one the checkpoint recorded)');
  onCheckpoint('evaluate', "load a checkpoint and report its loss and metrics on the model's data, split as training split it")
    .option('--episodes <n>', "for a model trained from episodes: how many to run (default: the env's episodes)")
    .action(async (file: string, options: EvaluateFlags & { model?: string; args?: string; episodes?: string }) => setStatus(await evaluateCommand(file, options, io)));
  onCheckpoint('predict', "load a checkpoint and write its outputs for each example of a split of the model's data, or of all of it (JSON lines, or CSV); `example` is the example's data row in the file, counted from 0 after the header; a file without the label column serves outputs that do not read it")
    .option('--out <file>', 'write to this file (CSV when it ends in .csv) instead of standard output')
    .option('--outputs <names>', 'comma-separated outputs to compute (default: all); only the inputs they read are needed')
    .action(async (file: string, options: PredictFlags & { model?: string; args?: string }) => setStatus(await predictCommand(file, options, io)));
  program
    .command('sample')
    .description('generate text from a trained character language model (a token input [B, L] and a next-token distribution [B, V])')
    .argument('<file>')
    .option('--model <name>', 'the model (when the file trains several)')
    .option('--args <hyperparameters>', ARGS_HELP)
    .option('--checkpoint <path>', "the weights (default: the train block's checkpoint, else checkpoints/<Model>.safetensors beside the .dl file)")
    .option('--prompt <text>', 'the text to continue (default: a newline, or the first character of a text without one)')
    .option('--length <n>', 'characters to generate (default 200)')
    .option('--temperature <t>', 'below 1: likelier characters; 0: always the likeliest (default 1)')
    .option('--top-k <k>', 'draw among the k likeliest characters only')
    .option('--top-p <p>', 'nucleus sampling: draw among the likeliest characters whose probabilities add up to p')
    .option('--seed <n>', 'seed of the draws (default 0)')
    .option('--input <name>', 'the token input (default: the only i32 input shaped [B, L])')
    .option('--output <name>', 'the next-token distribution (default: the only f32 output shaped [B, V])')
    .option('--data <name>', DATA_HELP)
    .action(async (file: string, options: SampleFlags & { model?: string; args?: string }) => setStatus(await sampleCommand(file, options, io)));
  program
    .command('weights')
    .description("write a weights-only file from a checkpoint: the parameters and the model's own state (batch norm's running statistics), without the optimizer's state or the random key; a page loads it with loadWeights")
    .argument('<checkpoint>')
    .requiredOption('-o, --out <file>', 'the weights file to write (.safetensors)')
    .action(async (checkpoint: string, options: { out: string }) => {
      const { writeWeightsOnly } = await import('./weights.ts');
      setStatus((await writeWeightsOnly(checkpoint, options.out, io)) ? EXIT_OK : EXIT_USER_ERROR);
    });
  program
    .command('summary')
    .description('a table of layers, output shapes and parameter counts')
    .argument('<file>')
    .option('--model <name>', 'only this model')
    .option('--args <hyperparameters>', 'hyperparameters, as in a call: "hidden: 16, depth: 1" (over the train block\'s)')
    .option('--weights', "list the tensors a weights file for the model holds (each path, dtype and shape, parameter or state), as a state_dict: the names loadWeights, init_from and --checkpoint match")
    .action((file: string, options: { model?: string; args?: string; weights?: boolean }) => setStatus(withGraphs(file, options, io, options.weights ? weightList : summarize)));
  program
    .command('explain')
    .description('print the long explanation of a diagnostic code')
    .argument('[code]')
    .option('--list', 'list every code')
    .action((code: string | undefined, options: { list?: boolean }) =>
      setStatus(options.list || code === undefined ? listCodes(io) : explain(code, io)),
    );
  return program;
}

/** Runs the CLI; never throws: internal failures become exit code 2 with a one-line message. */
export async function main(argv: readonly string[], io: Io = defaultIo): Promise<number> {
  let status = EXIT_OK;
  let internal = false;
  const program = buildProgram({ ...io, internal: () => (internal = true) }, (code) => {
    status = code !== EXIT_OK && internal ? EXIT_INTERNAL_ERROR : code;
  });
  try {
    await program.parseAsync([...argv]);
    return status;
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? EXIT_OK : EXIT_USER_ERROR;
    io.err(`internal compiler error: ${(e as Error)?.message ?? String(e)}`);
    if (process.env.DLC_DEBUG) io.err(String((e as Error)?.stack));
    io.err('this is a bug in dlc, not in your model; please report it with the input file');
    return EXIT_INTERNAL_ERROR;
  }
}
