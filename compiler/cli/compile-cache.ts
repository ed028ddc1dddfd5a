// Compiled programs kept between runs of the commands that execute a model (train, evaluate, predict, sample), so an unchanged file is not compiled again.
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync, unlinkSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join, resolve as resolvePath } from 'node:path';
import type { ModelProgram } from '../../runtime/program.ts';
import { writeFileAtomic } from '../../runtime/node/checkpoint-file.ts';

/** Bump when an entry's layout changes. */
const FORMAT = 1;
/** Entries kept; the least recently written go first. */
const MAX_ENTRIES = 24;

export interface CompiledEntry {
  readonly programs: readonly ModelProgram[];
}

interface StoredEntry extends CompiledEntry {
  readonly format: number;
  /** Every source file the compile read besides the standard library, with the hash of its text then. */
  readonly sources: readonly { readonly path: string; readonly sha: string }[];
}

const sha = (text: string | Uint8Array) => createHash('sha256').update(text).digest('hex');

let identity: string | null | undefined;

/**
 * A hash of the compiler's own code: every file of compiler/, grammar/, runtime/ and stdlib/, so any
 * change to dlc misses every entry. Null when those files cannot be read (then nothing is cached).
 */
function compilerIdentity(): string | null {
  if (identity !== undefined) return identity;
  const root = resolvePath(import.meta.dirname, '../..');
  const hash = createHash('sha256');
  const walk = (dir: string) => {
    for (const name of readdirSync(dir).sort()) {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) {
        if (name !== 'node_modules' && name !== 'out' && name !== 'vscode') walk(path);
      } else if (/\.(ts|dl|json)$/.test(name)) hash.update(`${path.slice(root.length)}\0`).update(readFileSync(path)).update('\0');
    }
  };
  try {
    for (const dir of ['compiler', 'grammar', 'runtime', 'stdlib']) walk(join(root, dir));
    identity = hash.digest('hex');
  } catch {
    identity = null;
  }
  return identity;
}

/** Where entries live: $DLC_CACHE_DIR, else $XDG_CACHE_HOME/dlc, else ~/.cache/dlc; undefined when DLC_CACHE=off. */
export function cacheDir(): string | undefined {
  const env = process.env;
  if (env.DLC_CACHE === 'off' || env.DLC_CACHE === '0') return undefined;
  return env.DLC_CACHE_DIR ?? join(env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'dlc');
}

/** The entry's name: the compiler, the file's path and what was asked of it (its hyperparameters, whose data). */
export function entryKey(file: string, options: Readonly<Record<string, unknown>>): string | undefined {
  const compiler = compilerIdentity();
  if (compiler === null) return undefined;
  return sha(JSON.stringify([FORMAT, compiler, file, resolvePath(file), options]));
}

/** The entry for `key`, if every source it was compiled from still has the same text. Unreadable entries are misses. */
export function lookup(key: string): CompiledEntry | undefined {
  const dir = cacheDir();
  if (!dir) return undefined;
  const path = join(dir, `${key}.json`);
  if (!existsSync(path)) return undefined;
  try {
    const entry = JSON.parse(readFileSync(path, 'utf8')) as StoredEntry;
    if (entry.format !== FORMAT) return undefined;
    for (const s of entry.sources) {
      if (!existsSync(s.path) || sha(readFileSync(s.path, 'utf8')) !== s.sha) return undefined;
    }
    return { programs: entry.programs };
  } catch {
    return undefined;
  }
}

/** Stores a compile's result under `key`, with the sources it read; a cache that cannot be written is skipped silently. */
export async function store(key: string, entry: CompiledEntry, sources: ReadonlyMap<string, string>): Promise<void> {
  const dir = cacheDir();
  if (!dir) return;
  try {
    await mkdir(dir, { recursive: true });
    const stored: StoredEntry = { format: FORMAT, ...entry, sources: [...sources].map(([path, text]) => ({ path: resolvePath(path), sha: sha(text) })) };
    await writeFileAtomic(join(dir, `${key}.json`), new TextEncoder().encode(JSON.stringify(stored)));
    const entries = readdirSync(dir)
      .filter((n) => n.endsWith('.json'))
      .map((n) => ({ path: join(dir, n), at: statSync(join(dir, n)).mtimeMs }))
      .sort((a, b) => b.at - a.at);
    for (const old of entries.slice(MAX_ENTRIES)) unlinkSync(old.path);
  } catch {
    // a read-only or full disk costs the next run a compile, nothing else
  }
}
