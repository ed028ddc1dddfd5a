// The one table of diagnostic codes: each code's severity, title and long explanation (`dlc explain`).

export interface CodeInfo {
  readonly severity: 'error' | 'warning';
  readonly title: string;
  readonly explanation: string;
}

export const CODES = {
  // ---- E00xx: reading the text
  E0001: {
    severity: 'error',
    title: 'unexpected character',
    explanation: `A character that cannot start any token of the language was found.
Identifiers are ASCII letters, digits and underscores; operators are + - * / % ** @ == != < <= > >= = -> => .. ... and brackets.

    let y = x § 2     // error: '§' is not part of the language
    let y = x * 2     // ok

A name with a letter outside ASCII is one error, and the name is still read as one word:

    let größe = 4     // error: names are ASCII letters, digits and _
    let groesse = 4   // ok

There is no # comment; the rest of a line after # is skipped:

    let n = 4  # four     // error
    let n = 4  // four    // ok`,
  },
  E0002: {
    severity: 'error',
    title: 'unterminated string literal',
    explanation: `A string literal was opened with " but the line ended before the closing quote.
Strings cannot span lines; write \\n for a line break inside one.

    use "./blocks.dl        // error
    use "./blocks.dl"       // ok`,
  },
  E0003: {
    severity: 'error',
    title: 'unterminated block comment',
    explanation: `A block comment was opened with /* and never closed with */ before the end of the file.
Block comments do not nest.`,
  },
  E0004: {
    severity: 'error',
    title: 'invalid escape sequence in string',
    explanation: `Strings accept the escapes \\\\ \\" \\n \\r \\t and \\0 only.

    let s = "a\\qb"    // error
    let s = "a\\tb"    // ok`,
  },
  E0005: {
    severity: 'error',
    title: 'number literal out of range',
    explanation: `An integer literal does not fit in a 32-bit signed integer (at most 2147483647), or a float literal is not finite.
Sizes and indices are 32-bit on the GPU; write large constants as floats (1e12) where a float is meant.`,
  },
  E0006: {
    severity: 'error',
    title: 'file is not UTF-8',
    explanation: `A .dl file is read as UTF-8, and this one has a byte that is not part of a UTF-8 character:
it was probably saved in another encoding (Latin-1, Windows-1252), for example with an accented letter in a comment.
The error gives the byte's offset and its line; nothing else in the file is checked, compiled or formatted,
and \`dlc fmt --write\` leaves the file as it is rather than replace the byte.

    // café      saved as Latin-1 (the é is the one byte 0xE9): error
    // café      saved as UTF-8 (é is the two bytes 0xC3 0xA9): ok

Save the file as UTF-8 (most editors have it under "Save with Encoding"), or run \`iconv -f latin1 -t utf-8\`.`,
  },
  E0010: {
    severity: 'error',
    title: 'syntax error',
    explanation: `The parser expected something else at this point. The message says what it expected and what it found.
The parser recovers and keeps going, so later errors may be consequences of the first one: fix from the top.

    layer Dense(in: int out: int) { }    // error: expected ',' or ')' before 'out'
    layer Dense(in: int, out: int) { }   // ok`,
  },
  E0011: {
    severity: 'error',
    title: 'unknown keyword',
    explanation: `A word in keyword position is not a keyword of the language, but is close to one.
At the top level a file holds 'use', 'layer', 'model', 'train', 'fn' and 'let' declarations;
bodies hold 'param', 'state', 'input', 'output', 'layer', 'let', 'loss', 'metric', 'where', 'forward', 'for', 'if', 'return', 'yield'.

    parm w: f32[4, 4] = zeros     // error: did you mean 'param'?`,
  },
  E0012: {
    severity: 'error',
    title: 'nesting too deep',
    explanation: `Brackets, parentheses, braces or prefix operators are nested deeper than the compiler accepts (200 levels, or syntax trees deeper than 1000).
No model needs this; the limit keeps the compiler's stack bounded on hostile input. Split the expression with 'let'.`,
  },
  E0013: {
    severity: 'error',
    title: 'statement not allowed here',
    explanation: `Each kind of body accepts its own statements:
- a file: use, layer, model, train, fn, let
- a layer: param, state, layer, let, where, for, if, forward
- a model: input, output, param, state, layer, let, loss, metric, where, for, if and reassignment
- a forward or fn body: let, reassignment, where, for, if, return
- a scan body: let, reassignment, where, for, if, yield (exactly one yield per step: \`yield h\`, or a tuple \`yield h, c\`)
- a train block: settings (name = value), setting blocks (name { ... }), freeze, minimize/maximize, step

    layer Dense(n: int) {
      input x: f32[B, n]       // error: 'input' belongs in a model; a layer takes its inputs in forward(...)
    }

The syntax the language reference lists as unsupported (§12) is E0013 too, with its rewrite:
- a second \`for\` clause in a comprehension: nest the lists, or run one index over both (\`k / m\`, \`k % m\`)
- an assignment to a member or an element (\`a.b = x\`, \`a[i] = x\`): bind the new value to a name
- a \`layer Name(...) { ... }\` declared inside a model or layer: declare it at the top level of the file`,
  },
  E0014: {
    severity: 'error',
    title: 'misplaced ellipsis',
    explanation: `'...' stands for a variadic prefix of a shape (f32[..., d]) or for the remaining axes of an index (x[..., 0]).
It may appear at most once in a shape or an index and nowhere else.`,
  },

  // ---- E02xx: names
  E0201: {
    severity: 'error',
    title: 'unknown name',
    explanation: `A name is used that is not declared in scope: not a hyperparameter, parameter, state, input, let binding,
sublayer, loop variable, symbolic size (a name that appears in a shape), declaration of this file, import or builtin.

    let y = rleu(x)     // error: unknown name 'rleu'; did you mean 'relu'?`,
  },
  E0202: {
    severity: 'error',
    title: 'duplicate definition',
    explanation: `Two declarations in one scope have the same name. Every layer, model, fn, parameter, state, input, output,
sublayer, loss and metric name must be unique where it is declared; reassign an existing value with 'x = ...' instead of a second 'let x'.
A member declared inside a 'for' loop would be declared again by every iteration under one name: declare a list before the loop.

    for i in 0..2 { layer rep = Dense(4, 4); h = rep(h) }             // error
    layer reps = [Dense(4, 4) for i in 0..2]; for i in 0..2 { h = reps[i](h) }`,
  },
  E0203: {
    severity: 'error',
    title: 'unknown import',
    explanation: `A 'use' names a module or an item that does not exist. The standard library is 'std' with the modules
std.nn (layers), std.act (activations), std.loss (losses), std.metrics, std.math, std.init and std.optim; local files are imported by a relative path in quotes.

    use std.nn.{Dense, Conv2D}    // error: no 'Conv2D' in std.nn; did you mean 'Conv2d'?`,
  },
  E0204: {
    severity: 'error',
    title: 'unknown train setting',
    explanation: `A 'train' block accepts the settings optimizer, schedule, batch, epochs, steps, clip_grad_norm, clip_grad_value, data, env, split, stratify, ordered_split, shuffle, seed,
validation, early_stopping, checkpoint, init_from, param_group, max_batch, metrics, log_every, eval_every, augment and freeze_mode. Setting blocks (name { ... })
take the settings documented for them.

    train Mlp { epoch = 10 }     // error: unknown setting 'epoch'; did you mean 'epochs'?`,
  },
  E0205: {
    severity: 'error',
    title: 'unknown model in train block',
    explanation: `'train Name { ... }' must name a model declared in this file or imported into it.`,
  },
  E0206: {
    severity: 'error',
    title: 'invalid training setup',
    explanation: `A train block cannot be turned into training steps: an unknown optimizer or schedule, an option that is not
a number, a path in freeze, over or param_group that names no parameter, a loss the model does not declare, several losses
without saying which to minimize, a step left with no parameter to update, a loss with no gradient with respect to the
parameters it trains (it reads them only through argmax, comparisons, integer casts or stop_gradient, or not at all), a batch
over max_batch, a train block for a model imported from another file, or a dataset (data, validation), environment (env)
or augmentation (augment) that dlc train does not know, or an argument it does not take.

    train Mlp { data = minst() }   // error: \`minst\` is not a dataset dlc train knows; did you mean \`mnist\`?

    train Gan {
      step d { minimize d_loss over Disc with adam(lr: 2e-4) }   // error if the model has no member Disc
    }`,
  },

  W0206: {
    severity: 'warning',
    title: 'training setting with no effect',
    explanation: `A train block asks for something that changes nothing: a param_group whose parameters are all
frozen (its options apply to no update), a freeze_mode with no frozen layer, or (when every objective has an \`over\`)
parameters that are in no objective's \`over\` and not frozen, which training leaves at their initial values.
Training goes ahead; remove the setting, unfreeze the parameters, or add the layers to an \`over\` list (or \`freeze\` them to say so).

    train Ft {
      freeze trunk
      param_group { params = [trunk]; lr = 1e-4 }   // warning: every parameter of this group is frozen
    }`,
  },
  E0207: {
    severity: 'error',
    title: 'data does not fit the model',
    explanation: `A train block's data (or validation) names a dataset whose columns are known before reading it, and one of the
model's inputs does not fit: no column has the input's name, the element types differ, or one example's shape (the input's
shape after the batch axis B) differs from the column's. A symbolic size takes the data's value (a text's window length L);
a flat column also feeds an input of the same size ([784] into [1, 28, 28]). A train block with env = cartpole(...) needs the
inputs observation f32[B, 4], action i32[B] and returns f32[B] and the output sampled_action i32[B]; env = pendulum(...)
needs observation f32[B, 3], action f32[B, 1], returns f32[B] and sampled_action f32[B, 1] (a torque). With gae_lambda
(actor-critic), the model also needs the input advantages f32[B] and the output value f32[B], its estimate of each state's
value. Acting gives sampled_action (and value) the observation alone, and the losses and metrics may read only the inputs
the episodes give. The train block's
augment must work on an image column the data gives ([C, H, W], channels-last [H, W, C], [H, W] or a square [H * W]).
A CSV's columns are named features (every column but the label, as f32) and, with label:, label, whatever its headers;
each column categorical lists is one of its header name, one i32 index per example (an input i32[B]); a categorical column
may not also be listed in columns, be the label, or be named features or label.
dlc train, evaluate and predict report under this code, at the data (or validation) setting, what they find reading the data
it names: a file they cannot read or parse, a column count or width that does not fit (listing the CSV columns taken as
features: an unnamed first column is often a pandas index), a value that does not fit an integer input. dlc train reports
under it, at init_from, a weights file that sets no parameter of the model, or leaves a frozen parameter at its random
initial value: the message lists the file's names and shapes and the model's, with the rename or transpose that would fit
(init_from { path = "..."; rename = ["module.* -> *"]; transpose = ["fc.w"] }; dlc summary --weights lists what the model expects).

    model LeNet { input image: f32[B, 1, 28, 28] ... }
    train LeNet { data = cifar10() }   // error: cifar10() gives image as f32[3, 32, 32] per example`,
  },

  // ---- E03xx: types and shapes
  E0301: {
    severity: 'error',
    title: 'operands do not fit the operation',
    explanation: `An operation received tensors whose dtypes or shapes it cannot combine. The message names the operation and
both shapes as you wrote them; the primary span is the offending operand and a secondary label shows where the other came from.
A slice or an index past its axis (x[:, 5:20] of 10, x[:, :T + 1]), indices counted by arange past their table, and a stack of
tensors of different shapes are E0301 too; slices do not clamp.

    param w: f32[748, 10] = glorot_uniform
    let logits = image @ w        // error: matmul inner dimensions differ: f32[B, 784] @ f32[748, 10]`,
  },
  W0301: {
    severity: 'warning',
    title: 'broadcast pairs every example with every other',
    explanation: `An elementwise operation between tensors of different ranks lines their axes up from the right (numpy's
broadcasting), so an operand's leading batch axis can land on the other's size-1 axis: a regression head's
f32[B, 1] minus a label f32[B] is f32[B, B], every prediction against every label, and a mean over it is a
number that trains and reports nothing useful. Give both operands the same axes, or write the pairing out when
every pair is meant (a distance matrix):

    let pred = head(x)                           // f32[B, 1]
    metric mae = mean(abs(pred - label))         // warning: f32[B, 1] against f32[B] is f32[B, B]
    metric mae = mean(abs(pred[:, 0] - label))   // each prediction against its own label
    let d = x[:, None, :] - x[None, :, :]        // every pair, on purpose: no warning`,
  },
  E0302: {
    severity: 'error',
    title: 'value does not match its declared type',
    explanation: `A value has a different dtype or shape from the type declared for it: a forward argument, a forward's return
type, a typed let or output, a loss (a loss must be a scalar f32), a metric (a scalar, or a table such as a confusion
matrix: f32 of a fixed shape and a sum over the examples, so that a data set has one), or a scan carry that the body gives
another type than it starts with.

    forward(x: f32[B, 784]) -> f32[B, 10] = x @ w    // error if w is f32[784, 12]`,
  },
  E0303: {
    severity: 'error',
    title: 'wrong arguments',
    explanation: `A call has too many or too few arguments, an unknown keyword argument, an argument given twice, or a
hyperparameter of the wrong kind (a float where an int is declared, a tensor where a size is expected).`,
  },
  E0304: {
    severity: 'error',
    title: 'constraint violated',
    explanation: `A 'where' constraint is false for the hyperparameters given, or for the sizes a train block's data fixes (a
text's window length L against 'where L <= ctx + 1', a CSV's listed feature columns, or the condition 'rows >= L' of a
table indexed by positions), or for a batch size training would run: a condition on B against the train block's batch
(32 by default) and, where the data's size is known (iris, mnist), each split's last batch, which holds what is left over.

    model Pairs { input x: f32[B, 4]  where B % 2 == 0  ... }
    train Pairs { data = iris()  batch = 16 }   // error: the validation split's 15 examples make one batch of 15

    layer Attention(d: int, heads: int) {
      where d % heads == 0
    }
    layer a = Attention(10, 3)     // error: d % heads == 0 is false (d = 10, heads = 3)`,
  },
  E0305: {
    severity: 'error',
    title: 'cannot evaluate at compile time',
    explanation: `Something that must be known when compiling is not: an 'if' or 'for' over a tensor, a list index out of range,
a division by zero in a size, or a size that depends on tensor data. Use select(cond, a, b) to choose between tensors elementwise.`,
  },
  E0306: {
    severity: 'error',
    title: 'scan over an axis of unknown length',
    explanation: `The compiler unrolls 'scan' over the time axis, so the length of that axis must be known when compiling.
Give the sequence length as a hyperparameter in the input type, e.g. 'input x: f32[B, steps, features]' with 'steps: int = 128'.`,
  },
  E0307: {
    severity: 'error',
    title: 'wrong kind of value',
    explanation: `A value is used in a way its kind does not allow: calling a tensor, doing arithmetic on a layer, indexing a number,
initializing a parameter with something that is not an initializer, a tensor method from another framework (w.T is transpose(w)),
or an optional tensor argument that was not given (it is None: test 'mask != None' before using it).
A list of numbers is a constant tensor where a tensor is expected: 'features - [0.0, 100.0]' or 'features - mu'
for a 'mu: float[]' hyperparameter; rows nest ('[[1, 0], [0, 1]]' is i32[2, 2]), and 'tensor(values, dtype: f32)'
makes one explicitly (to pass to a fn or a layer, or to choose the dtype). A list holding tensors is not one:
'stack(xs)' or 'concat(xs)' joins tensors.`,
  },
  E0308: {
    severity: 'error',
    title: 'recursion too deep',
    explanation: `Functions call each other more than 200 levels deep while compiling. Functions are inlined, so recursion
must end at compile time.`,
  },

  E0309: {
    severity: 'error',
    title: 'too much work at compile time',
    explanation: `A model is built by running its description when compiling: loops and comprehensions are unrolled and every
operation becomes a node of the graph. A range of more than 1,000,000 items, or a model of more than 50,000
operations (the LSTM example has about 11,000), is refused before it exhausts the compiler's memory (loops and \`scan\` are unrolled:
use fewer steps, or do repeated work as one tensor operation).

    let ids = [i for i in 0..1000000000]    // error: a range of 1,000,000,000 items`,
  },

  // ---- E04xx: code generation and device limits
  E0401: {
    severity: 'error',
    title: 'tensor too large for one storage binding',
    explanation: `Every tensor lives in one GPU storage buffer, and WebGPU's default limit on a storage buffer
binding is 128 MiB (maxStorageBufferBindingSize = 134217728 bytes). A tensor whose size is known at
compile time and exceeds it is rejected before anything runs. Make the tensor smaller (fewer
features, a smaller embedding table) or split it into several parameters.

    param w: f32[100000, 1000]    // error: 400,000,000 bytes
    param w: f32[10000, 1000]     // ok: 40,000,000 bytes`,
  },
  E0402: {
    severity: 'error',
    title: 'model cannot be compiled to WGSL',
    explanation: `The model elaborated and type-checked, but a part of it has no WGSL lowering yet (for example
an f16 tensor, which needs the shader-f16 feature). The message names the op and the tensor.`,
  },

  // ---- E09xx: the compiler itself
  E0900: {
    severity: 'error',
    title: 'internal compiler error',
    explanation: `The compiler hit a bug. This is never the user's fault. Please report it with the input file;
the message carries what the compiler was doing.`,
  },
} as const satisfies Record<string, CodeInfo>;

export type Code = keyof typeof CODES;

export function isCode(code: string): code is Code {
  return Object.hasOwn(CODES, code);
}
