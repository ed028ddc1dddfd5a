// Why the file system refused to make a folder or write a file, in words (for one-line errors, not stack traces); making folders without hanging.
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { dirname } from 'node:path';

/** The reason in `err` (a Node file-system error) as a user reads it; its own message where no words fit. */
export function writeRefusal(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code ?? '';
  const why: Record<string, string> = {
    EEXIST: 'a part of the path is a file, not a folder',
    ENOTDIR: 'a part of the path is a file, not a folder',
    EACCES: 'permission denied',
    EPERM: 'permission denied',
    EROFS: 'the file system is read-only',
    ENOSPC: 'the disk is full',
    ENOENT: 'the file system there does not allow making folders',
  };
  return why[code] ?? (err as Error).message;
}

/** Whether `err` is the file system's refusal (it has an errno code), not a bug. */
export function isFileSystemError(err: unknown): boolean {
  return typeof (err as NodeJS.ErrnoException)?.code === 'string';
}

/**
 * Makes `dir` and the folders above it that are missing, one at a time. Node's recursive mkdirSync
 * never returns on a file system that answers ENOENT for a folder whose parent exists (/proc/x/y):
 * here that is an error, thrown as the file system's (writeRefusal words it).
 */
export function makeFolders(dir: string): void {
  const missing: string[] = [];
  for (let d = dir; !existsSync(d); d = dirname(d)) {
    missing.unshift(d);
    if (dirname(d) === d) break;
  }
  const existing = missing.length > 0 ? dirname(missing[0]) : dir;
  if (existsSync(existing) && !statSync(existing).isDirectory()) throw Object.assign(new Error(`ENOTDIR: not a directory, mkdir '${dir}'`), { code: 'ENOTDIR' });
  for (const d of missing) mkdirSync(d);
}
