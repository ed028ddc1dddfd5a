// The Node-only part of the runtime: datasets from packages and files, and atomic checkpoint files.
export { loadDataset, KNOWN_DATASETS, type LoadDatasetOptions } from './datasets.ts';
export { loadCsvFile, loadCsvFileSync } from './csv-file.ts';
export { dataRoot, loadCifar10, loadTextWindows, loadUciHar } from './downloaded.ts';
export { readCheckpoint, writeCheckpoint, writeFileAtomic } from './checkpoint-file.ts';
