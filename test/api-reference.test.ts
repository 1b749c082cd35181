// README.md's API reference agrees with what users get: the published declarations (what
// `npm run build:ts` wrote, for both entry points), the error codes the sources can produce,
// and the flags `native-file-lock --help` prints. Each side must name everything the other has.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import ts from 'typescript';
import { beforeAll, describe, expect, it } from 'vitest';

import { runSync } from './helpers.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const readme = readFileSync(join(root, 'README.md'), 'utf8');

/** The text under a heading, up to the next heading of the same or a higher level. */
function section(heading: string): string {
  const level = /^#+/.exec(heading)![0].length;
  const start = readme.indexOf(`\n${heading}\n`);
  if (start < 0) throw new Error(`README.md has no '${heading}'`);
  const rest = readme.slice(start + heading.length + 2);
  const end = rest.search(new RegExp(`^#{1,${level}} `, 'm'));
  return end < 0 ? rest : rest.slice(0, end);
}

const apiSection = section('## API');
const cliSection = section('## Command line');

/** The first column of every table in a text, as the backticked names in it. */
function tableNames(text: string, skip: (row: string) => boolean = () => false): Set<string> {
  const names = new Set<string>();
  for (const row of text.split('\n').map((line) => line.trim()).filter((line) => line.startsWith('|'))) {
    if (skip(row)) continue;
    const first = row.split(/(?<!\\)\|/)[1]!;
    for (const match of first.matchAll(/`([^`]+)`/g)) names.add(match[1]!);
  }
  return names;
}

/** The rows of the table whose header row starts with `| <first> |`. */
function table(text: string, first: string): string {
  const start = text.indexOf(`| ${first} |`);
  if (start < 0) throw new Error(`no table headed '${first}'`);
  const lines = text.slice(start).split('\n');
  const end = lines.findIndex((line) => !line.trimStart().startsWith('|'));
  return lines.slice(2, end < 0 ? undefined : end).join('\n');
}

const sorted = (names: Iterable<string>) => [...new Set(names)].sort();

// ---------------------------------------------------------------------------------------------
// The published declarations and README's declarations, in one TypeScript program.

const entries = [
  ['the ES module', join(root, 'dist/esm/index.d.ts')],
  ['the CommonJS', join(root, 'dist/cjs/index.d.ts')],
] as const;

// Every ```ts block of the API section declares the API in TypeScript; a bare signature line
// (`lock(path: LockPath, …): …`) is a function. They are read as one declaration file.
const README_DTS = join(root, 'README.api.d.ts');
function readmeDeclarations(): string {
  const blocks = [...apiSection.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]!);
  if (blocks.length === 0) throw new Error('the API section has no ```ts block');
  return blocks
    .join('\n')
    .split('\n')
    .map((line) =>
      /^(?!type\b|interface\b|class\b)[A-Za-z_$][\w$]*\s*[<(]/.test(line)
        ? `declare function ${line}`
        : line.replace(/^class\b/, 'declare class'),
    )
    .join('\n');
}

interface Api {
  program: ts.Program;
  checker: ts.TypeChecker;
  readme: ts.SourceFile;
  /** The declarations README.md's API section makes, by name. */
  documented: Map<string, ts.Symbol>;
  exportsOf(entry: string): Map<string, ts.Symbol>;
}

let loaded: Api | undefined;
function loadApi(): Api {
  if (loaded) return loaded;
  const options: ts.CompilerOptions = {
    noEmit: true,
    strict: true,
    lib: ['lib.es2022.d.ts', 'lib.esnext.disposable.d.ts'],
    types: ['node'],
    typeRoots: [join(root, 'node_modules/@types')],
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
  };
  const host = ts.createCompilerHost(options);
  const text = readmeDeclarations();
  const { getSourceFile, fileExists, readFile } = host;
  host.getSourceFile = (name, ...rest) =>
    name === README_DTS ? ts.createSourceFile(name, text, ts.ScriptTarget.ES2022, true) : getSourceFile.call(host, name, ...rest);
  host.fileExists = (name) => name === README_DTS || fileExists.call(host, name);
  host.readFile = (name) => (name === README_DTS ? text : readFile.call(host, name));
  for (const [, entry] of entries) {
    if (!host.fileExists(entry)) throw new Error(`${entry} is missing: run \`npm run build:ts\` first`);
  }
  const program = ts.createProgram([...entries.map(([, entry]) => entry), README_DTS], options, host);
  const checker = program.getTypeChecker();
  const readme = program.getSourceFile(README_DTS)!;
  const documented = new Map<string, ts.Symbol>();
  for (const statement of readme.statements) {
    const name = (statement as ts.DeclarationStatement).name;
    if (!name || !ts.isIdentifier(name)) continue;
    documented.set(name.text, checker.getSymbolAtLocation(name)!);
  }
  const exportsOf = (entry: string) => {
    const exports = new Map<string, ts.Symbol>();
    for (const symbol of checker.getExportsOfModule(checker.getSymbolAtLocation(program.getSourceFile(entry)!)!)) {
      exports.set(symbol.name, symbol.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(symbol) : symbol);
    }
    return exports;
  };
  loaded = { program, checker, readme, documented, exportsOf };
  return loaded;
}

const print = (checker: ts.TypeChecker, type: ts.Type) =>
  checker.typeToString(type, undefined, ts.TypeFormatFlags.NoTruncation | ts.TypeFormatFlags.InTypeAlias);

/** A declaration in words, to compare: its kind, its signatures and its members with their types. */
function shape(checker: ts.TypeChecker, symbol: ts.Symbol): string[] {
  const lines: string[] = [];
  const kind = [
    symbol.flags & ts.SymbolFlags.Function && 'function',
    symbol.flags & ts.SymbolFlags.Class && 'class',
    symbol.flags & (ts.SymbolFlags.Interface | ts.SymbolFlags.TypeAlias) && 'type',
  ].filter(Boolean);
  lines.push(`kind: ${kind.join(', ')}`);
  const signature = (s: ts.Signature) =>
    `(${s.getParameters()
      .map((p) => {
        const declaration = p.valueDeclaration as ts.ParameterDeclaration | undefined;
        const optional = declaration && (declaration.questionToken || declaration.initializer) ? '?' : '';
        return `${p.name}${optional}: ${print(checker, checker.getTypeOfSymbol(p))}`;
      })
      .join(', ')}): ${print(checker, s.getReturnType())}`;
  const members = (type: ts.Type, prefix: string) => {
    // In name order: a class that overrides `name` lists it first.
    const properties = [...checker.getPropertiesOfType(type)].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const property of properties) {
      const optional = property.flags & ts.SymbolFlags.Optional ? '?' : '';
      const name = property.name.replace(/^__@(\w+)@\d+$/, '[Symbol.$1]');
      const calls = checker.getTypeOfSymbol(property).getCallSignatures();
      if (property.flags & ts.SymbolFlags.Method) {
        for (const call of calls) lines.push(`${prefix}${name}${optional}${signature(call)}`);
      } else {
        lines.push(`${prefix}${name}${optional}: ${print(checker, checker.getTypeOfSymbol(property))}`);
      }
    }
  };
  if (symbol.flags & ts.SymbolFlags.Function) {
    for (const call of checker.getTypeOfSymbol(symbol).getCallSignatures()) lines.push(`call${signature(call)}`);
  }
  if (symbol.flags & ts.SymbolFlags.Type) {
    const type = checker.getDeclaredTypeOfSymbol(symbol);
    // Members of object types (classes: the instance side, constructors left out); other types as written out.
    if (type.flags & ts.TypeFlags.Object || type.isIntersection()) members(type, 'member ');
    else lines.push(`type = ${print(checker, type)}`);
    for (const call of type.getCallSignatures()) lines.push(`call${signature(call)}`);
  }
  return lines;
}

describe.each(entries)('README.md’s API section against %s entry point’s declarations', (_name, entry) => {
  let api: Api;
  let exported: Map<string, ts.Symbol>;
  beforeAll(() => {
    api = loadApi();
    exported = api.exportsOf(entry);
  });

  it('declares every export, and nothing that is not exported', () => {
    expect(exported.size).toBeGreaterThan(0);
    expect(sorted(api.documented.keys()), 'names declared in the ```ts blocks under ## API').toEqual(sorted(exported.keys()));
  });

  it('declares each export with the same kind, signatures, parameters, members and types', () => {
    for (const [name, symbol] of exported) {
      const documented = api.documented.get(name);
      if (!documented) continue; // reported by the test above
      expect(shape(api.checker, documented), name).toEqual(shape(api.checker, symbol));
    }
  });

  it('has declarations that are valid TypeScript naming only what they declare', () => {
    const diagnostics = [...api.program.getSyntacticDiagnostics(api.readme), ...api.program.getSemanticDiagnostics(api.readme)].map((d) =>
      ts.flattenDiagnosticMessageText(d.messageText, '\n'),
    );
    expect(diagnostics).toEqual([]);
    for (const statement of api.readme.statements) {
      expect(
        ts.isFunctionDeclaration(statement) || ts.isClassDeclaration(statement) || ts.isInterfaceDeclaration(statement) || ts.isTypeAliasDeclaration(statement),
        statement.getText(),
      ).toBe(true);
    }
  });

  it('names in bold only exports, their parameters and members of exported types', () => {
    const known = new Set(exported.keys());
    for (const symbol of exported.values()) {
      for (const call of api.checker.getTypeOfSymbol(symbol).getCallSignatures()) for (const p of call.getParameters()) known.add(p.name);
      if (!(symbol.flags & ts.SymbolFlags.Type)) continue;
      for (const property of api.checker.getPropertiesOfType(api.checker.getDeclaredTypeOfSymbol(symbol))) known.add(property.name);
    }
    const bold = [...apiSection.matchAll(/\*\*`([A-Za-z_$][\w$]*)/g)].map((m) => m[1]!);
    expect(bold.length).toBeGreaterThan(0);
    expect(bold.filter((name) => !known.has(name))).toEqual([]);
  });

  it.each([
    ['LockOptions', '### Options', 'option'],
    ['LockManagerRequestOptions', '### Lock manager: the Web Locks API across processes', 'option'],
  ])('has a row in its options table for each property of %s, and no other row', (name, heading, first) => {
    const options = exported.get(name);
    expect(options, `${name} is exported`).toBeDefined();
    const properties = api.checker.getPropertiesOfType(api.checker.getDeclaredTypeOfSymbol(options!)).map((p) => p.name);
    expect(sorted(tableNames(table(section(heading), first)))).toEqual(sorted(properties));
  });
});


// ---------------------------------------------------------------------------------------------
// Error codes. Gathered from the code, not from a list kept by hand:
// - every string literal the sources (src/*.ts and the CLI) put where a code goes: the value of
//   a `code` property (`{ code: 'EDEADLK', … }`, warnings included) or an argument for a
//   parameter named `code`;
// - every code the CLI tells apart (`code === 'EMFILE'`, `error.code === …`): the library
//   throws it, or the CLI would not look for it;
// - the system errors whose message errors.ts explains (the keys of its HINTS table);
// - every libuv error number the addon names itself (`UV_EISDIR` in native/*.cc);
// - the literal members of the exported FileLockErrorCode;
// - every code the published `@throws` tags name, in backticks.
// The README's Errors section must have a table row for each; and each code a row names must
// be one of them or one FileLockErrorCode's doc comment names.

const CODE = /^(E[A-Z0-9]{2,}|ERR_[A-Z_]+|NFL_[A-Z_]+)$/;

function gatheredCodes(): { codes: Map<string, string>; alsoNamed: Set<string> } {
  const codes = new Map<string, string>(); // code → where it was found
  const add = (code: string, where: string) => {
    if (CODE.test(code) && !codes.has(code)) codes.set(code, where);
  };
  const sources = [
    ...readdirSync(join(root, 'src'))
      .filter((name) => name.endsWith('.ts') && !name.endsWith('.d.ts'))
      .map((name) => join(root, 'src', name)),
    join(root, 'bin', 'native-file-lock.mjs'),
  ];
  const program = ts.createProgram(sources, { noEmit: true, allowJs: true, strict: true, types: ['node'], module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext });
  const checker = program.getTypeChecker();
  const isCode = (node: ts.Node) =>
    (ts.isIdentifier(node) && node.text === 'code') || ((ts.isPropertyAccessExpression(node) || ts.isElementAccessExpression(node)) && node.getText().endsWith('code'));
  for (const path of sources) {
    const file = program.getSourceFile(path)!;
    const where = (node: ts.Node) => `${path.slice(root.length)}:${file.getLineAndCharacterOfPosition(node.getStart()).line + 1}`;
    const visit = (node: ts.Node): void => {
      if (ts.isPropertyAssignment(node) && node.name.getText() === 'code' && ts.isStringLiteralLike(node.initializer)) add(node.initializer.text, where(node));
      if (ts.isCallExpression(node) && node.arguments.some((a) => ts.isStringLiteralLike(a) && CODE.test(a.text))) {
        const parameters = checker.getResolvedSignature(node)?.getParameters() ?? [];
        node.arguments.forEach((argument, i) => {
          if (ts.isStringLiteralLike(argument) && parameters[i]?.name === 'code') add(argument.text, where(argument));
        });
      }
      if (ts.isBinaryExpression(node) && [ts.SyntaxKind.EqualsEqualsEqualsToken, ts.SyntaxKind.ExclamationEqualsEqualsToken].includes(node.operatorToken.kind)) {
        for (const [side, other] of [[node.left, node.right], [node.right, node.left]] as const) {
          if (ts.isStringLiteralLike(side) && isCode(ts.isParenthesizedExpression(other) ? other.expression : other)) add(side.text, where(side));
        }
      }
      if (ts.isVariableDeclaration(node) && node.name.getText() === 'HINTS' && node.initializer && ts.isObjectLiteralExpression(node.initializer)) {
        for (const property of node.initializer.properties) add(property.name!.getText(), where(property));
      }
      ts.forEachChild(node, visit);
    };
    visit(file);
  }
  for (const name of readdirSync(join(root, 'native')).filter((n) => n.endsWith('.cc'))) {
    for (const match of readFileSync(join(root, 'native', name), 'utf8').matchAll(/\bUV_(E[A-Z0-9]+)\b/g)) add(match[1]!, `native/${name}`);
  }
  // The published declarations: FileLockErrorCode's members and every @throws tag.
  const api = loadApi();
  const exported = api.exportsOf(entries[0][1]);
  const errorCode = api.checker.getDeclaredTypeOfSymbol(exported.get('FileLockErrorCode')!);
  for (const member of errorCode.isUnion() ? errorCode.types : []) if (member.isStringLiteral()) add(member.value, 'FileLockErrorCode');
  const documented = (symbol: ts.Symbol) => [symbol, ...(symbol.flags & ts.SymbolFlags.Type ? api.checker.getPropertiesOfType(api.checker.getDeclaredTypeOfSymbol(symbol)) : [])];
  for (const symbol of [...exported.values()].flatMap(documented)) {
    for (const tag of symbol.getJsDocTags(api.checker).filter((t) => t.name === 'throws')) {
      for (const match of ts.displayPartsToString(tag.text).matchAll(/`([A-Z_0-9]+)`/g)) add(match[1]!, `@throws of ${symbol.name}`);
    }
  }
  const alsoNamed = new Set([...ts.displayPartsToString(exported.get('FileLockErrorCode')!.getDocumentationComment(api.checker)).matchAll(/`'?([A-Z_0-9]+)'?`/g)].map((m) => m[1]!));
  return { codes, alsoNamed };
}

describe('README.md’s Errors section', () => {
  const errors = section('### Errors');
  const rows = tableNames(errors);

  it('has a table row for every error and warning code the library produces, and for no other code', () => {
    const { codes, alsoNamed } = gatheredCodes();
    // Enough to show the gathering works: the library's own codes, a TypeError's, a warning's, a system error's.
    for (const code of ['ELOCKTIMEOUT', 'ELOCKUNSUPPORTED', 'EDEADLK', 'ERR_INVALID_ARG_VALUE', 'NFL_HELD_LONG', 'EACCES']) expect(codes.has(code), code).toBe(true);
    const missing = [...codes].filter(([code]) => !rows.has(code)).map(([code, where]) => `${code} (${where})`);
    expect(missing, 'codes with no row').toEqual([]);
    const unknown = [...rows].filter((code) => CODE.test(code) && !codes.has(code) && !alsoNamed.has(code));
    expect(unknown, 'rows for codes the library never produces').toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------------
// The CLI: every flag and subcommand `--help` prints is in README's "Command line" section.

describe('README.md’s Command line section', () => {
  // The full environment: node must keep a preloaded sanitizer runtime (runSync's default drops it).
  const help = runSync(process.execPath, [join(root, 'bin', 'native-file-lock.mjs'), '--help'], { env: process.env });
  const flagsIn = (text: string) => [...text.matchAll(/(?<![\w-])(--?[A-Za-z][\w-]*)/g)].map((m) => m[1]!);
  const options = help.stdout.slice(help.stdout.indexOf('\nOptions:\n'), help.stdout.indexOf('\nExit status'));
  const usage = help.stdout.slice(help.stdout.indexOf('Usage:'), help.stdout.indexOf('\n\n'));
  // Rows for flock(1)'s flags the CLI refuses say "Not supported".
  const documented = tableNames(table(cliSection, 'Option'), (row) => row.includes('Not supported'));
  const usageBlock = /```sh\n(native-file-lock [\s\S]*?)```/.exec(cliSection)?.[1] ?? '';

  it('help lists its options (so that this test reads them)', () => {
    expect(help.status).toBe(0);
    expect(flagsIn(options)).toContain('--shared');
    expect(flagsIn(usage)).toContain('--json');
  });

  it('documents every option of `--help` in its options table, and offers no option --help lacks', () => {
    const fromTable = [...documented].flatMap((cell) => flagsIn(cell));
    expect(sorted(fromTable)).toEqual(sorted(flagsIn(options)));
  });

  it('has every exit status `--help` names in its exit status table', () => {
    const statuses = [...help.stdout.slice(help.stdout.indexOf('\nExit status')).matchAll(/\b(\d+)\b/g)].map((m) => m[1]!);
    expect(statuses).toContain('64');
    const rows = table(cliSection, 'Status');
    for (const status of statuses) expect(rows, `exit status ${status}`).toMatch(new RegExp(`\\b${status}\\b`));
  });

  it('shows every form and flag of the usage lines of `--help` in its usage block', () => {
    expect(usageBlock).not.toBe('');
    for (const flag of flagsIn(usage)) expect(flagsIn(usageBlock), flag).toContain(flag);
    const subcommands = [...usage.matchAll(/native-file-lock ([a-z]+)/g)].map((m) => m[1]!);
    expect(subcommands.length).toBeGreaterThan(0);
    for (const command of subcommands) expect(usageBlock, command).toContain(`native-file-lock ${command} `);
  });
});
