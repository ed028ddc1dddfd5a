// Emits the typed TypeScript module of one model with ts-morph: input/output/metric types, the program, and a class over the runtime.
import { IndentationText, Project, QuoteKind, Scope, VariableDeclarationKind, type SourceFile } from 'ts-morph';
import { languageModelIo } from '../../runtime/sample.ts';
import { dataflowInputs, outputSubset, reportedResults } from '../../runtime/subset.ts';
import type { DType, ModelProgram, SizeExpr, TensorDecl } from '../../runtime/program.ts';

export interface EmitOptions {
  /** The module specifier the generated code imports the runtime from (default `dlc/runtime`). */
  readonly runtimeImport?: string;
  /** The .dl path, as written in the header comment. */
  readonly source?: string;
}

const INPUT_ARRAY: Readonly<Record<DType, string>> = {
  f32: 'Float32Array | readonly number[]',
  i32: 'Int32Array | readonly number[]',
  u32: 'Uint32Array | readonly number[]',
  bool: 'Uint32Array | Uint8Array | readonly (number | boolean)[]',
};
const OUTPUT_ARRAY: Readonly<Record<DType, string>> = { f32: 'Float32Array', i32: 'Int32Array', u32: 'Uint32Array', bool: 'Uint32Array' };

function showSize(e: SizeExpr): string {
  if (typeof e === 'number' || typeof e === 'string') return String(e);
  const [op, ...args] = e;
  const parts = args.map(showSize);
  switch (op) {
    case '+':
      return `(${parts.join(' + ')})`;
    case '*':
      return parts.join(' * ');
    case '^':
      return `${parts[0]}^${parts[1]}`;
    case 'floor':
      return `(${parts[0]} / ${parts[1]})`;
    case 'mod':
      return `(${parts[0]} % ${parts[1]})`;
  }
}

export function typeText(t: { dtype: DType; shape: readonly SizeExpr[] }): string {
  return `${t.dtype}[${t.shape.map(showSize).join(', ')}]`;
}

/** `MnistMlp` -> `mnist_mlp`: the file name of a model's module. */
export function moduleFileName(model: string): string {
  return model.replace(/([a-z0-9])([A-Z])/g, '$1_$2').replace(/([A-Z])([A-Z][a-z])/g, '$1_$2').toLowerCase();
}

function union(names: readonly string[]): string {
  return names.length === 0 ? 'never' : names.map((n) => JSON.stringify(n)).join(' | ');
}

function docOf(t: TensorDecl, what: string): string {
  const count = t.shape.length === 0 ? 'one value' : `${t.shape.map(showSize).join(' × ')} values, row-major`;
  return `${what} \`${t.name}\`: ${typeText(t)} (${count}).`;
}

function build(file: SourceFile, program: ModelProgram, options: EmitOptions): void {
  const cls = program.model;
  const runtime = options.runtimeImport ?? 'dlc/runtime';
  const predictInputs = Object.keys(dataflowInputs(program.graphs.predict).inputs);
  // the inputs training and evaluation read: those their losses, metrics and updates depend on
  const stepInputs = program.inputs.map((i) => i.name).filter((name) => program.graphs.steps.some((g) => name in dataflowInputs(g, reportedResults(program, g)).inputs));
  const evaluateInputs = Object.keys(dataflowInputs(program.graphs.evaluate, reportedResults(program, program.graphs.evaluate)).inputs);
  const reported = [...program.losses, ...program.metrics];
  // a language model (a token input [B, L], a next-token output [B, V]) also samples
  const lm = languageModelIo(program);
  const sampling = typeof lm === 'string' ? undefined : lm;
  const stepNames = program.graphs.steps.map((g) => g.name);
  // a model without a train block has no trainStep, fit or prepareTraining: calling them is a type error, not a runtime one
  const trains = stepNames.length > 0;
  // layers the train block adapts: the module has `adapt`
  const adapted = (program.training?.adapt ?? []).map((a) => a.layer);
  // the array a parameter reads back as: one type when every parameter has one dtype
  const paramDtypes = [...new Set(program.params.map((p) => p.dtype))];
  const paramArray = paramDtypes.length === 0 ? 'Float32Array' : [...new Set(paramDtypes.map((d) => OUTPUT_ARRAY[d]))].join(' | ');
  const paramInput = paramDtypes.length === 0 ? 'readonly number[]' : [...new Set(paramDtypes.map((d) => INPUT_ARRAY[d]))].join(' | ');
  const stateDtypes = [...new Set(program.state.map((s) => s.dtype))];
  const stateArray = stateDtypes.length === 0 ? 'Float32Array' : [...new Set(stateDtypes.map((d) => OUTPUT_ARRAY[d]))].join(' | ');
  const sizesType = '{ readonly sizes?: Partial<Record<Size, number>> }';

  file.addImportDeclaration({
    moduleSpecifier: runtime,
    namedImports: [
      'Model',
      'type CopyReport',
      'type CreateOptions',
      ...(trains ? ['type Dataset', 'type FitOptions', 'type History'] : []),
      ...(adapted.length > 0 ? ['type AdaptReport'] : []),
      'type LoadOptions',
      'type LoadReport',
      'type MemoryReport',
      'type ModelProgram',
      'type Profile',
      'type ProfileOptions',
      'type SaveOptions',
      ...(sampling ? ['sampleTokens', 'type SampleOptions'] : []),
    ],
  });

  file.addInterface({
    name: 'Inputs',
    isExported: true,
    docs: [`One batch for ${cls}: every input, each a flat row-major array. The batch size ${program.sizes.join(', ') || '(none)'} is read from the lengths.`],
    // a scalar input (epsilon: f32[]) also takes a plain number
    properties: program.inputs.map((t) => ({ name: t.name, type: t.shape.length === 0 ? `${INPUT_ARRAY[t.dtype]} | ${t.dtype === 'bool' ? 'boolean | number' : 'number'}` : INPUT_ARRAY[t.dtype], isReadonly: true, docs: [docOf(t, 'Input')] })),
  });
  file.addTypeAlias({
    name: 'PredictInputs',
    isExported: true,
    docs: ['The inputs `predict` needs: those the declared outputs depend on.'],
    type: predictInputs.length === 0 ? 'Record<string, never>' : `Pick<Inputs, ${union(predictInputs)}>`,
  });
  // the inputs a graph reads as required properties, the others optional (given or not, they are not read)
  const inputsInterface = (name: string, needed: readonly string[], doc: string) =>
    file.addInterface({
      name,
      isExported: true,
      docs: [doc],
      properties: program.inputs.map((t) => ({ name: t.name, type: `Inputs['${t.name}']`, isReadonly: true, hasQuestionToken: !needed.includes(t.name) })),
    });
  inputsInterface('StepInputs', stepInputs, 'The inputs `trainStep` needs: those its losses, metrics and parameter updates depend on (the others may be given).');
  inputsInterface('EvaluateInputs', evaluateInputs, 'The inputs `evaluate` needs: those its losses and metrics depend on (the others may be given).');
  file.addInterface({
    name: 'OutputInputs',
    isExported: true,
    docs: ['The inputs each output depends on: `predict(inputs, { outputs })` needs only those of the outputs it names.'],
    properties: program.outputs.map((t) => ({ name: t.name, type: union(Object.keys(outputSubset(program.graphs.predict, [t.name]).inputs)), isReadonly: true })),
  });
  file.addInterface({
    name: 'Outputs',
    isExported: true,
    docs: [`What \`predict\` returns: the model's declared outputs.`],
    properties: program.outputs.map((t) => ({ name: t.name, type: OUTPUT_ARRAY[t.dtype], isReadonly: true, docs: [docOf(t, 'Output')] })),
  });
  file.addTypeAlias({ name: 'Loss', isExported: true, type: union(program.losses), docs: ['The losses the model declares.'] });
  file.addTypeAlias({ name: 'Metric', isExported: true, type: union(program.metrics), docs: ['The metrics the model declares.'] });
  const tables = Object.entries(program.tables ?? {});
  file.addTypeAlias({ name: 'TableMetric', isExported: true, type: union(tables.map(([name]) => name)), docs: ['The metrics that are tables (a confusion matrix): `evaluateSet` reports them, over a data set, as nested arrays.'] });
  file.addTypeAlias({ name: 'Reported', isExported: true, type: tables.length > 0 ? 'Loss | Exclude<Metric, TableMetric>' : 'Loss | Metric', docs: ['Every number `evaluate` reports (and `trainStep`, with the objectives): the losses and the metrics that are not tables.'] });
  file.addTypeAlias({
    name: 'SetMetrics',
    isExported: true,
    type: tables.length > 0 ? `Record<Reported, number> & { ${tables.map(([name, shape]) => `readonly ${JSON.stringify(name)}: number${'[]'.repeat(shape.length)}`).join('; ')} }` : 'Record<Reported, number>',
    docs: ['What `evaluateSet` reports over a data set: the losses and metrics, and each table metric as nested arrays (a confusion matrix [C, C] as `number[][]`, rows the true classes).'],
  });
  // a step that minimizes an expression (`minimize g_loss - 0.1 * d_loss`) reports it under its own name
  const objectives = [...new Set((program.training?.steps ?? []).map((st) => st.loss).filter((l) => l !== '' && !program.losses.includes(l)))];
  file.addTypeAlias({ name: 'StepValue', isExported: true, type: objectives.length > 0 ? `Reported | ${union(objectives)}` : 'Reported', docs: ['Every value `trainStep` reports: the losses, the metrics and the objectives of steps that minimize an expression.'] });
  file.addTypeAlias({ name: 'ParameterPath', isExported: true, type: union(program.params.map((p) => p.path)), docs: ['Parameter paths, as saved in weights files.'] });
  file.addTypeAlias({
    name: 'StatePath',
    isExported: true,
    type: union(program.state.map((s) => s.path)),
    docs: ["State buffer paths, as saved in weights files: the model's own (batch norm's running statistics), the optimizer's (`opt.*`) and the random key."],
  });
  file.addTypeAlias({ name: 'Size', isExported: true, type: union(program.sizes), docs: ['The symbolic sizes (the batch B, a length L), as `{ sizes }` options name them.'] });
  file.addTypeAlias({ name: 'TrainStepName', isExported: true, type: union(stepNames), docs: ["The train block's steps, in order, as `trainStep(batch, { step })` names them."] });
  if (objectives.length > 0) {
    const own = (program.training?.steps ?? []).map((st) => `readonly ${JSON.stringify(st.name)}: ${objectives.includes(st.loss) ? JSON.stringify(st.loss) : 'never'}`);
    file.addTypeAlias({ name: 'StepObjectives', isExported: true, type: `{ ${own.join('; ')} }`, docs: ["Each step's objective value, where it minimizes an expression: `trainStep(batch, { step })` reports that step's only."] });
  }

  file.addVariableStatement({
    isExported: true,
    declarationKind: VariableDeclarationKind.Const,
    docs: ['Each input and output with its declared dtype and shape.'],
    declarations: [
      {
        name: 'signature',
        initializer: JSON.stringify({
          inputs: Object.fromEntries(program.inputs.map((t) => [t.name, typeText(t)])),
          outputs: Object.fromEntries(program.outputs.map((t) => [t.name, typeText(t)])),
          parameters: Object.fromEntries(program.params.map((p) => [p.path, `${p.dtype}[${p.shape.join(', ')}]`])),
        }, null, 2) + ' as const',
      },
    ],
  });
  file.addVariableStatement({
    isExported: true,
    declarationKind: VariableDeclarationKind.Const,
    docs: ['The compiled program: WGSL shaders, buffers and dispatches of every graph.'],
    // the program's JSON (megabytes: every shader) goes in after formatting (emitModule), so ts-morph
    // never rescans it while it builds and formats the rest of the module
    declarations: [{ name: 'program', type: 'ModelProgram', initializer: `JSON.parse(${PROGRAM_JSON}) as ModelProgram` }],
  });

  const stepValues = objectives.length > 0 ? 'Reported | StepObjectives[S]' : 'StepValue';
  file.addClass({
    name: cls,
    isExported: true,
    docs: [`${cls} on a WebGPU device. Create it with \`create()\`; free its GPU memory with \`dispose()\`.`],
    // a field and an assignment, not a parameter property: projects with erasableSyntaxOnly (npm create vite, Node's type stripping) refuse those
    properties: [{ name: 'model', type: 'Model<keyof Inputs & string, keyof Outputs & string, Reported>', isReadonly: true, scope: Scope.Private }],
    ctors: [{ scope: Scope.Private, parameters: [{ name: 'model', type: 'Model<keyof Inputs & string, keyof Outputs & string, Reported>' }], statements: ['this.model = model;'] }],
    methods: [
      {
        name: 'create',
        isStatic: true,
        isAsync: true,
        docs: ['Acquire a device (or use `options.device`), compile the shaders and initialize the weights.'],
        parameters: [{ name: 'options', type: 'CreateOptions', initializer: '{}' }],
        returnType: `Promise<${cls}>`,
        statements: [`return new ${cls}(await Model.create<keyof Inputs & string, keyof Outputs & string, Reported>(program, options));`],
      },
      ...(trains
        ? [
            {
              name: 'trainStep',
              docs: [
                'One training step on a batch (every step of the train block in order, or only `options.step`); returns at once. `values()` reads the losses and metrics when needed. `sizes` fixes sizes the lengths cannot tell, e.g. `{ L: 12 }`.',
              ],
              // with several objectives, the values are those of the steps that run: one step alone reports its own objective only
              ...(objectives.length > 0 ? { typeParameters: [{ name: 'S', constraint: 'TrainStepName', default: 'TrainStepName' }] } : {}),
              parameters: [
                { name: 'batch', type: 'StepInputs' },
                { name: 'options', type: `{ readonly step?: ${objectives.length > 0 ? 'S' : 'TrainStepName'}; readonly sizes?: Partial<Record<Size, number>> }`, initializer: '{}' },
              ],
              returnType: `{ readonly step: number; values(): Promise<Record<${stepValues}, number>> }`,
              statements: [
                'const handle = this.model.trainStep(batch as Inputs, options);',
                `return { step: handle.step, values: () => handle.values() as Promise<Record<${stepValues}, number>> };`,
              ],
            },
          ]
        : []),
      delegate(
        'evaluate',
        'Losses and metrics on one batch, in evaluation mode (`sizes` as for `trainStep`).',
        [
          { name: 'batch', type: 'EvaluateInputs' },
          { name: 'options', type: sizesType, initializer: '{}' },
        ],
        'Promise<Record<Reported, number>>',
        'this.model.evaluate(batch as Inputs, options)',
      ),
      delegate(
        'evaluateSet',
        'Losses and metrics over many batches taken as one data set: precision, recall, F1, AUC, confusion matrices and means from sums over every batch, so the batch size does not change them. No batches is an InputError.',
        [
          { name: 'batches', type: 'Iterable<EvaluateInputs>' },
          { name: 'options', type: sizesType, initializer: '{}' },
        ],
        'Promise<SetMetrics>',
        'this.model.evaluateSet(batches as Iterable<Inputs>, options) as Promise<SetMetrics>',
      ),
      {
        name: 'predict',
        docs: [
          'The declared outputs for a batch of inputs, in evaluation mode (`sizes` fixes sizes the lengths cannot tell, e.g. `{ B: 1 }`). With `outputs`, only those: only the kernels they need run, and only the inputs they depend on (`OutputInputs`) are needed.',
        ],
        // without `outputs`, K is every output: the inputs are PredictInputs and the result is Outputs
        typeParameters: [{ name: 'K', constraint: 'keyof Outputs', default: 'keyof Outputs' }],
        parameters: [
          { name: 'inputs', type: 'Pick<Inputs, OutputInputs[K]>' },
          { name: 'options', type: '{ readonly sizes?: Partial<Record<Size, number>>; readonly outputs?: readonly K[] }', initializer: '{}' },
        ],
        returnType: 'Promise<Pick<Outputs, K>>',
        statements: ['return this.model.predict(inputs, options) as Promise<unknown> as Promise<Pick<Outputs, K>>;'],
      },
      ...(sampling
        ? [
            delegate(
              'sample',
              `Draw \`options.length\` tokens after \`prompt\`, one \`predict\` each, from \`${sampling.output.name}\` given the last \`options.context\` tokens of \`${sampling.input.name}\`.`,
              [
                { name: 'prompt', type: 'readonly number[]' },
                { name: 'options', type: "Omit<SampleOptions, 'input' | 'output'>" },
              ],
              'Promise<number[]>',
              `sampleTokens(this.model, prompt, { ...options, input: '${sampling.input.name}', output: '${sampling.output.name}' })`,
            ),
          ]
        : []),
      ...(trains
        ? [
            delegate(
              'fit',
              "Train for some epochs with validation each epoch, early stopping and callbacks; what `options` leaves out is the train block's (epochs, batch, early_stopping, ...).",
              [
                { name: 'data', type: '{ readonly train: Dataset; readonly validation?: Dataset }' },
                { name: 'options', type: 'FitOptions', initializer: '{}' },
              ],
              'Promise<History>',
              'this.model.fit(data, options)',
            ),
          ]
        : []),
      ...(adapted.length > 0
        ? [
            delegate(
              'adapt',
              "Set the layers the train block adapts to the per-feature mean and variance of their input over `data` (Keras' Normalization.adapt); `fit()` does it before the first step. For batches fed with `trainStep`, call it once first.",
              [
                { name: 'data', type: 'Dataset' },
                { name: 'options', type: `{ readonly layers?: readonly (${adapted.map((l) => JSON.stringify(l)).join(' | ')})[] }`, initializer: '{}' },
              ],
              'Promise<AdaptReport[]>',
              'this.model.adapt(data, options)',
            ),
          ]
        : []),
      delegate('saveWeights', 'The weights (and by default the full training state) as safetensors bytes.', [{ name: 'options', type: 'SaveOptions', initializer: '{}' }], 'Promise<Uint8Array>', 'this.model.saveWeights(options)'),
      delegate(
        'loadWeights',
        'Load safetensors bytes saved by `saveWeights` (checked against the model before anything is written).',
        [
          { name: 'bytes', type: 'Uint8Array' },
          { name: 'options', type: 'LoadOptions', initializer: '{}' },
        ],
        'Promise<LoadReport>',
        'this.model.loadWeights(bytes, options)',
      ),
      trains
        ? delegate(
            'profile',
            "Time each kernel of the training step (or `options.graph`: 'evaluate', 'predict') alone on `batch`; `formatProfile` prints it. Trains nothing.",
            [
              { name: 'batch', type: 'Partial<Inputs>' },
              { name: 'options', type: 'ProfileOptions', initializer: '{}' },
            ],
            'Promise<Profile>',
            'this.model.profile(batch, options)',
          )
        : delegate(
            'profile',
            "Time each kernel of `options.graph` ('evaluate' or 'predict': the model has no train block) alone on `batch`; `formatProfile` prints it.",
            [
              { name: 'batch', type: 'Partial<Inputs>' },
              { name: 'options', type: "ProfileOptions & { readonly graph: 'evaluate' | 'predict' }" },
            ],
            'Promise<Profile>',
            'this.model.profile(batch, options)',
          ),
      ...(trains
        ? [
            delegate(
              'prepareTraining',
              "Compile the train steps' shaders now: `create()` builds only what `predict` and `evaluate` run, and the first training call builds the rest (`fit()` calls this first).",
              [],
              'Promise<void>',
              'this.model.prepareTraining()',
            ),
          ]
        : []),
      delegate('reset', 'Every parameter and state buffer back to its initial value for `seed` (a whole number in [0, 2^32)), and the step count to 0.', [{ name: 'seed', type: 'number' }], 'void', 'this.model.reset(seed)'),
      delegate(
        'trim',
        'Free the GPU buffers sized for earlier batches (inputs, temporaries, upload staging): after one large batch, the next call allocates for its own size. The weights stay.',
        [],
        'void',
        'this.model.trim()',
      ),
      delegate('getParameter', "One parameter's values, row-major, as of the work submitted so far.", [{ name: 'path', type: 'ParameterPath' }], `Promise<${paramArray}>`, `this.model.getParameter(path) as Promise<${paramArray}>`),
      delegate(
        'getState',
        "One state buffer's values, row-major, as of the work submitted so far: batch norm's running statistics, the optimizer's moments and step counters, the random key.",
        [{ name: 'path', type: 'StatePath' }],
        `Promise<${stateArray}>`,
        `this.model.getState(path) as Promise<${stateArray}>`,
      ),
      delegate(
        'setParameter',
        'Overwrite one parameter (row-major, exactly its element count; see `signature.parameters`).',
        [
          { name: 'path', type: 'ParameterPath' },
          { name: 'data', type: paramInput },
        ],
        'void',
        'this.model.setParameter(path, data)',
      ),
      delegate(
        'copyParametersFrom',
        "Set the parameters and the model's own state (batch norm's running statistics; `state: false` leaves it) from another model's (a target network, an EMA copy): the same paths, or `map(path)` (undefined skips one); `tau` < 1 averages, `tau * source + (1 - tau) * own`.",
        [
          { name: 'other', type: '{ readonly runtime: Model<string, string, string> }' },
          { name: 'options', type: '{ readonly map?: (path: ParameterPath | StatePath) => string | undefined; readonly tau?: number; readonly state?: boolean }', initializer: '{}' },
        ],
        'Promise<CopyReport>',
        'this.model.copyParametersFrom(other.runtime, options as { readonly map?: (path: string) => string | undefined; readonly tau?: number; readonly state?: boolean })',
      ),
      {
        name: 'dispose',
        docs: ['Free every GPU buffer; the object cannot be used afterwards.'],
        returnType: 'void',
        statements: ['this.model.dispose();'],
      },
    ],
    getAccessors: [
      { name: 'adapterInfo', docs: ['The adapter the model runs on, in words.'], returnType: 'string', statements: ['return this.model.adapterInfo;'] },
      { name: 'step', docs: ['Training steps run so far.'], returnType: 'number', statements: ['return this.model.step;'] },
      { name: 'memory', docs: ['The GPU memory the model takes at the sizes given to create() (undefined when some size was not given): a plan, which does not change; `memoryInUse` is what it holds now.'], returnType: 'MemoryReport | undefined', statements: ['return this.model.memory;'] },
      {
        name: 'memoryInUse',
        docs: ['The GPU bytes the model holds now: weights, state, the buffers sized for the batches run so far, pools and the ring of step values (0 once disposed).'],
        returnType: 'number',
        statements: ['return this.model.memoryInUse;'],
      },
      { name: 'maxBatch', docs: ["The train block's max_batch: a larger batch is an InputError (undefined: no limit)."], returnType: 'number | undefined', statements: ['return this.model.maxBatch;'] },
      {
        name: 'runtime',
        docs: ['The runtime model underneath (untyped names): `evaluateBatches`, and the source of `copyParametersFrom`.'],
        returnType: 'Model<keyof Inputs & string, keyof Outputs & string, Reported>',
        statements: ['return this.model;'],
      },
    ],
  });

  file.addFunction({
    name: 'create',
    isExported: true,
    isAsync: true,
    docs: [`Create ${cls} on a WebGPU device: \`const model = await create({ batchSize: 128 })\`.`],
    parameters: [{ name: 'options', type: 'CreateOptions', initializer: '{}' }],
    returnType: `Promise<${cls}>`,
    statements: [`return ${cls}.create(options);`],
  });
  file.insertStatements(0, `// Generated by dlc from ${options.source ?? program.file} (model ${cls}). Do not edit: run \`dlc compile\` again.`);
}

function project(): Project {
  return new Project({
    useInMemoryFileSystem: true,
    manipulationSettings: { indentationText: IndentationText.TwoSpaces, quoteKind: QuoteKind.Single },
    compilerOptions: { strict: true, target: 99, module: 99, declaration: true, skipLibCheck: true, noResolve: true },
  });
}

/** Stands in the module for the program's JSON string literal until the module is formatted. */
const PROGRAM_JSON = '__dlcProgramJson__';

/** The module's TypeScript text. */
export function emitModule(program: ModelProgram, options: EmitOptions = {}): string {
  const file = project().createSourceFile(`${moduleFileName(program.model)}.ts`, '');
  build(file, program, options);
  file.formatText({ indentSize: 2 });
  const [before, after, ...rest] = file.getFullText().split(`JSON.parse(${PROGRAM_JSON})`);
  if (after === undefined || rest.length > 0) throw new Error('internal: the module must hold the program placeholder exactly once');
  // the shaders as WGSL one line per line (readable, and a changed kernel is a readable diff); the rest as JSON
  const { shaders, ...rest0 } = program;
  const wgsl = shaders.map((code, i) => `    // shader ${i}\n    \`${code.replace(/\\/g, '\\\\').replace(/`/g, '\\`').replace(/\$\{/g, '\\${')}\`,`).join('\n');
  return `${before}{\n  ...JSON.parse(${JSON.stringify(JSON.stringify(rest0))}),\n  shaders: [\n${wgsl}\n  ],\n}${after}`;
}

/** The module as JavaScript plus its declaration file (`--js`). */
export function emitModuleJs(program: ModelProgram, options: EmitOptions = {}): { js: string; dts: string } {
  const p = project();
  const name = moduleFileName(program.model);
  const file = p.createSourceFile(`/${name}.ts`, emitModule(program, options));
  const out = p.emitToMemory({ targetSourceFile: file });
  const files = out.getFiles();
  const js = files.find((f) => f.filePath.endsWith('.js'))?.text;
  const dts = files.find((f) => f.filePath.endsWith('.d.ts'))?.text;
  if (js === undefined || dts === undefined) throw new Error('ts-morph emitted no JavaScript or declarations');
  return { js, dts };
}

/** A method of the generated class that returns what the runtime's Model returns for the same call. */
function delegate(name: string, doc: string, parameters: readonly { name: string; type: string; initializer?: string }[], returnType: string, call: string) {
  return { name, docs: [doc], parameters: [...parameters], returnType, statements: [`return ${call};`] };
}
