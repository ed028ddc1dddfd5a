// Rewrites a user's file for `dlc fmt --write`: the file a symlink points to, keeping its mode and its hard links.
import { closeSync, fsyncSync, openSync, realpathSync, renameSync, chmodSync, statSync, unlinkSync, writeFileSync, writeSync, ftruncateSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

/**
 * Replaces the contents of `path` with `text`.
 *
 * - A symlink is followed (`realpath`): the file it points to is rewritten and the link stays a link.
 * - A file with one name is replaced atomically: the text goes to a temporary file beside the real
 *   file (same folder, so same file system), which gets the original's permission bits, and is then
 *   renamed over it. An interrupted write leaves either the old or the new text, never half of it.
 * - A file with several hard links cannot be renamed over without splitting it from its other names
 *   (they would keep the old text), so it is rewritten in place: truncated and written through the
 *   same inode, then synced. That gives up atomicity, which is the price of keeping the links.
 */
export function writeInPlace(path: string, text: string): void {
  const target = realpathSync(path);
  const before = statSync(target);
  if (before.nlink > 1) {
    const fd = openSync(target, 'r+');
    try {
      const bytes = Buffer.from(text, 'utf8');
      ftruncateSync(fd, 0);
      writeSync(fd, bytes, 0, bytes.length, 0);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    return;
  }
  const temp = join(dirname(target), `.${basename(target)}.dlc-fmt-${process.pid}.tmp`);
  try {
    writeFileSync(temp, text, { mode: 0o600 });
    // writeFileSync's mode is reduced by the umask; chmod sets the original's bits exactly
    chmodSync(temp, before.mode & 0o7777);
    renameSync(temp, target);
  } catch (e) {
    try {
      unlinkSync(temp);
    } catch {
      // the temporary file was never made, or was already renamed
    }
    throw e;
  }
}
