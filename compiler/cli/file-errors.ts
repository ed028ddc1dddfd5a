// Why the file system refused to make a folder or write a file, in words (for one-line errors, not stack traces).

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
  };
  return why[code] ?? (err as Error).message;
}

/** Whether `err` is the file system's refusal (it has an errno code), not a bug. */
export function isFileSystemError(err: unknown): boolean {
  return typeof (err as NodeJS.ErrnoException)?.code === 'string';
}
