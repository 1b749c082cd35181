import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

import ts from 'typescript';
import { beforeAll, describe, expect, it } from 'vitest';

// Editors show the doc comments of the published declarations, not of src/:
// these tests read what `npm run build:ts` wrote, through the exports of each
// entry point, so moving a declaration to another file cannot hide a loss.

interface Doc {
  text: string;
  tags: { name: string; text: string }[];
}

interface PublishedApi {
  exports: Map<string, ts.Symbol>;
  checker: ts.TypeChecker;
}

const entries = [
  ['the ES module', fileURLToPath(new URL('../dist/esm/index.d.ts', import.meta.url))],
  ['the CommonJS', fileURLToPath(new URL('../dist/cjs/index.d.ts', import.meta.url))],
] as const;

let program: ts.Program | undefined;

function load(entry: string): PublishedApi {
  if (!existsSync(entry)) throw new Error(`${entry} is missing: run \`npm run build:ts\` first`);
  // One program for both entry points; only the libraries the declarations name.
  program ??= ts.createProgram(
    entries.map(([, path]) => path),
    {
      noEmit: true,
      lib: ['lib.es2022.d.ts', 'lib.esnext.disposable.d.ts'],
      types: [],
      module: ts.ModuleKind.NodeNext,
      moduleResolution: ts.ModuleResolutionKind.NodeNext,
    },
  );
  const checker = program.getTypeChecker();
  const moduleSymbol = checker.getSymbolAtLocation(program.getSourceFile(entry)!)!;
  const exports = new Map<string, ts.Symbol>();
  for (const symbol of checker.getExportsOfModule(moduleSymbol)) {
    // Follows re-exports (`export { x } from './lock.js'`) to the declaration.
    exports.set(symbol.name, symbol.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(symbol) : symbol);
  }
  return { exports, checker };
}

function docOf(symbol: ts.Symbol, checker: ts.TypeChecker): Doc {
  return {
    text: ts.displayPartsToString(symbol.getDocumentationComment(checker)),
    tags: symbol.getJsDocTags(checker).map((tag) => ({ name: tag.name, text: ts.displayPartsToString(tag.text) })),
  };
}

const tagTexts = (doc: Doc, name: string) => doc.tags.filter((tag) => tag.name === name).map((tag) => tag.text);

describe.each(entries)('%s entry point’s declarations', (_name, entry) => {
  let api: PublishedApi;
  const doc = (name: string): Doc => {
    const symbol = api.exports.get(name);
    expect(symbol, `${name} is exported`).toBeDefined();
    return docOf(symbol!, api.checker);
  };

  beforeAll(() => {
    api = load(entry);
  });

  it.each([
    ['withFileLock', ['path', 'fn', 'options'], ['ELOCKTIMEOUT', 'EDEADLK', 'ELOCKUNSUPPORTED', 'EAGAIN', 'TypeError']],
    ['lock', ['path', 'options'], ['ELOCKTIMEOUT', 'EDEADLK', 'ELOCKUNSUPPORTED', 'EAGAIN', 'TypeError']],
    ['tryLock', ['path', 'options'], ['ELOCKUNSUPPORTED', 'TypeError']],
    ['withFileLocks', ['paths', 'fn', 'options'], ['ELOCKTIMEOUT', 'EDEADLK', 'ELOCKUNSUPPORTED', 'EAGAIN', 'TypeError']],
    ['lockAll', ['paths', 'options'], ['ELOCKTIMEOUT', 'EDEADLK', 'ELOCKUNSUPPORTED', 'EAGAIN', 'TypeError']],
    ['tryLockAll', ['paths', 'options'], ['ELOCKUNSUPPORTED', 'TypeError']],
  ])('%s is documented with its system calls, platform notes, parameters, result, thrown codes and an example', (name, params, codes) => {
    const { text, tags } = doc(name);
    expect(text).toMatch(/flock\(/);
    expect(text).toContain('LockFileEx');
    expect(text).toContain('Platform-specific behavior');
    expect(text).toContain('NFS');
    const documented = tagTexts({ text, tags }, 'param').map((t) => t.split(/\s/)[0]);
    expect(documented).toEqual(params);
    expect(tagTexts({ text, tags }, 'returns').join('')).not.toBe('');
    const throws = tagTexts({ text, tags }, 'throws').join('\n');
    for (const code of codes) expect(throws).toContain(code);
    expect(throws).toContain('signal.reason');
    expect(tagTexts({ text, tags }, 'example')).toHaveLength(1);
  });

  it('every LockOptions member has a doc comment that gives its default and how it is validated', () => {
    const options = api.exports.get('LockOptions');
    expect(options).toBeDefined();
    const members = api.checker.getDeclaredTypeOfSymbol(options!).getProperties();
    expect(members.map((m) => m.name).sort()).toEqual(['lockfilePath', 'onWait', 'onWaitAfterMs', 'removeLockFile', 'shared', 'signal', 'timeout', 'warnAfterMs']);
    for (const member of members) {
      const { text } = docOf(member, api.checker);
      expect(text, member.name).toMatch(/Default: /);
      expect(text, member.name).toContain('TypeError');
    }
  });

  it('FileLock, each of its members, the error classes and the other exported types have doc comments', () => {
    for (const name of ['FileLock', 'FileLockError', 'LockTimeoutError', 'FileLockErrorCode', 'LockOptions', 'LockPath']) {
      expect(doc(name).text, name).not.toBe('');
    }
    for (const name of ['FileLock', 'FileLockError', 'LockTimeoutError', 'FileLockErrorCode']) {
      expect(tagTexts(doc(name), 'example'), name).toHaveLength(1);
    }
    const fileLock = api.checker.getDeclaredTypeOfSymbol(api.exports.get('FileLock')!);
    const members = fileLock.getProperties();
    expect(members).toHaveLength(7);
    for (const member of members) expect(docOf(member, api.checker).text, member.name).not.toBe('');
    const release = docOf(fileLock.getProperty('release')!, api.checker);
    expect(release.text).toContain('UnlockFileEx');
    expect(tagTexts(release, 'throws').join('')).toContain('FileLockError');
    const error = api.checker.getDeclaredTypeOfSymbol(api.exports.get('FileLockError')!);
    for (const field of ['code', 'errno', 'syscall', 'path', 'resource']) {
      expect(docOf(error.getProperty(field)!, api.checker).text, field).not.toBe('');
    }
    for (const code of ['ELOCKTIMEOUT', 'ELOCKUNSUPPORTED', 'EDEADLK']) expect(doc('FileLockErrorCode').text).toContain(code);
  });
});
