// The dlc runtime's public surface (browser and Node): models, datasets, checkpoints and typed errors.
export { Model, type Batch, type CreateOptions, type LoadOptions, type LoadReport, type ProfileOptions, type SaveOptions } from './model.ts';
export { formatProfile, slowestKernels, sourceText, summarizeProfile, type KernelTime, type Profile, type TimeShare } from './profile.ts';
export type { HostArray, StepHandle, TypedArray } from './executor.ts';
export type { UploadOptions } from './upload.ts';
export { evaluateDataset, fit, type EarlyStopping, type EarlyStoppingState, type EpochLogs, type FitCallbacks, type FitOptions, type History, type StepInfo } from './fit.ts';
export { augmentBatch, parseAugmentations, type Augmentation } from './augment.ts';
export { Dataset, type Batch as DataBatch, type ColumnInput } from './data.ts';
export { mnistFromDigits, mnistFromSamples, type MnistOptions } from './mnist.ts';
export { irisFromRows } from './iris.ts';
export { parseCsv, type CsvSpec } from './csv.ts';
export { cifar10FromBatches, CIFAR10_CLASSES } from './cifar10.ts';
export { uciHarFromText, UCI_HAR_CHANNELS, UCI_HAR_CLASSES } from './uci-har.ts';
export { textWindows, vocabularyOf } from './text.ts';
export { decodeSafetensors, encodeSafetensors, SafetensorsError, type StoredTensor } from './safetensors.ts';
export { acquireDevice, type DeviceOptions } from './device.ts';
export * from './errors.ts';
export type { ModelProgram, SettingValue } from './program.ts';
export { memoryReport, formatBytes, type MemoryReport, type GraphMemory } from './memory.ts';
