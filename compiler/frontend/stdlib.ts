// The standard library: the .dl files under stdlib/, parsed once per process.
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Program } from '../../grammar/ast.ts';
import { parse } from '../../grammar/parse.ts';
import type { Diagnostic } from '../diagnostics/diagnostic.ts';

const STDLIB_DIR = fileURLToPath(new URL('../../stdlib/', import.meta.url));

let cache: { programs: Program[]; diagnostics: Diagnostic[]; sources: Map<string, string> } | undefined;

/** Every stdlib module, and any syntax error in one (which is a bug in dlc, reported as such). */
export function stdlibModules(): { programs: Program[]; diagnostics: Diagnostic[]; sources: Map<string, string> } {
  if (!cache) {
    const programs: Program[] = [];
    const diagnostics: Diagnostic[] = [];
    const sources = new Map<string, string>();
    for (const name of readdirSync(STDLIB_DIR).filter((f) => f.endsWith('.dl')).sort()) {
      const file = `stdlib/${name}`;
      const text = readFileSync(STDLIB_DIR + name, 'utf8');
      sources.set(file, text);
      const parsed = parse(text, file);
      programs.push(parsed.program);
      diagnostics.push(...parsed.diagnostics);
    }
    cache = { programs, diagnostics, sources };
  }
  return cache;
}
