// Checkpoint files in Node: atomic writes (temp file, fsync, rename, directory fsync) and safetensors reads.
import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, stat, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { WeightsError } from '../errors.ts';
import { type DecodedSafetensors, decodeSafetensors, encodeSafetensors, type StoredTensor } from '../safetensors.ts';

/** The temporary file name `writeFileAtomic` uses next to `path` (hidden, unique per call). */
export function temporaryPathFor(path: string): string {
  return join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
}

/** Whether a file name in a directory is one of `writeFileAtomic`'s temporary files for `target`. */
export function isTemporaryFileOf(fileName: string, target: string): boolean {
  const prefix = `.${basename(target)}.`;
  return fileName.startsWith(prefix) && /^\d+\.[0-9a-f]{12}\.tmp$/.test(fileName.slice(prefix.length));
}

/**
 * A temporary file of `writeFileAtomic` by its name (`.<target>.<pid>.<hex>.tmp`): the file it was
 * to replace (a name in the same folder) and the process that wrote it; undefined for other names.
 */
export function temporaryFileOwner(fileName: string): { target: string; pid: number } | undefined {
  const m = /^\.(.+)\.(\d+)\.[0-9a-f]{12}\.tmp$/.exec(fileName);
  return m ? { target: m[1], pid: Number(m[2]) } : undefined;
}

/** Whether the process `pid` is running (on this machine); a process of another user counts. */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Makes `dir` and the missing folders above it, one at a time: Node's recursive mkdir never settles
 * on a file system that answers ENOENT for a folder whose parent exists (/proc/x/y), and here that is
 * the file system's error.
 */
async function makeFolders(dir: string): Promise<void> {
  const missing: string[] = [];
  for (let d = dir; ; d = dirname(d)) {
    try {
      await stat(d);
      break;
    } catch {
      missing.unshift(d);
      if (dirname(d) === d) break;
    }
  }
  for (const d of missing) {
    try {
      await mkdir(d);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
  }
}

/**
 * Replaces the file at `path` with `bytes` so that readers (and the file after a crash) see either the
 * old contents or the new, never a mix: the bytes go to a temporary file in the same directory, which
 * is fsynced and renamed over the target; then the directory is fsynced where the platform allows.
 * Missing parent directories are created. On failure the temporary file is removed and the target is
 * untouched. (A process killed mid-write can leave a temporary file behind; see `isTemporaryFileOf`.)
 */
export async function writeFileAtomic(path: string, bytes: Uint8Array): Promise<void> {
  const dir = dirname(path);
  await makeFolders(dir);
  const temp = temporaryPathFor(path);
  let renamed = false;
  try {
    const handle = await open(temp, 'wx', 0o644);
    try {
      let written = 0;
      while (written < bytes.length) {
        const { bytesWritten } = await handle.write(bytes, written, bytes.length - written);
        written += bytesWritten;
      }
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, path);
    renamed = true;
  } finally {
    if (!renamed) await unlink(temp).catch(() => undefined);
  }
  await syncDirectory(dir);
}

/** Makes a rename durable; a no-op where directories cannot be opened or fsynced (Windows, some filesystems). */
async function syncDirectory(dir: string): Promise<void> {
  let handle;
  try {
    handle = await open(dir, 'r');
    await handle.sync();
  } catch {
    // Durability of the directory entry is best effort; the file itself is already fsynced.
  } finally {
    await handle?.close().catch(() => undefined);
  }
}

/** Encodes tensors and metadata as safetensors and writes them atomically to `path`; a file-system refusal is a WeightsError naming the path. */
export async function writeCheckpoint(
  path: string,
  tensors: ReadonlyMap<string, StoredTensor> | Readonly<Record<string, StoredTensor>>,
  metadata?: Readonly<Record<string, string>>,
): Promise<void> {
  const bytes = encodeSafetensors(tensors, metadata);
  try {
    await writeFileAtomic(path, bytes);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (typeof code !== 'string') throw e;
    const why: Record<string, string> = { EEXIST: 'a part of the path is a file, not a folder', ENOTDIR: 'a part of the path is a file, not a folder', EISDIR: 'it is a folder', EACCES: 'permission denied', EPERM: 'permission denied', EROFS: 'the file system is read-only', ENOSPC: 'the disk is full' };
    throw new WeightsError(`cannot write ${path}: ${why[code] ?? (e as Error).message} (nothing was replaced)`);
  }
}

/** Reads and validates the safetensors checkpoint at `path`; errors name the path. */
export async function readCheckpoint(path: string): Promise<DecodedSafetensors> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new WeightsError(code === 'ENOENT' ? `checkpoint not found: ${path}` : `cannot read checkpoint ${path}: ${(e as Error).message}`);
  }
  try {
    return decodeSafetensors(bytes);
  } catch (e) {
    throw new WeightsError(`${path}: ${(e as Error).message}`);
  }
}
