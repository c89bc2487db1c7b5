#!/usr/bin/env node
// Tokenize .mmscn files with the TextMate grammar, the way VS Code does
// (vscode-textmate + the Oniguruma regex engine): print JSON
// {file: [[line, startCol, endCol, text, [scopes...]], ...]}, columns from 0.
// The tests read it to check scopes at chosen positions and over the examples.
'use strict';
const fs = require('fs');
const path = require('path');
const vsctm = require('vscode-textmate');
const oniguruma = require('vscode-oniguruma');

const wasm = fs.readFileSync(path.join(path.dirname(require.resolve('vscode-oniguruma')), 'onig.wasm'));
const grammarPath = path.join(__dirname, 'syntaxes', 'mmscn.tmLanguage.json');

const onigLib = oniguruma.loadWASM(wasm.buffer).then(() => ({
  createOnigScanner: (patterns) => new oniguruma.OnigScanner(patterns),
  createOnigString: (s) => new oniguruma.OnigString(s),
}));

const registry = new vsctm.Registry({
  onigLib,
  loadGrammar: async (scopeName) => scopeName === 'source.mmscn'
    ? vsctm.parseRawGrammar(fs.readFileSync(grammarPath, 'utf8'), grammarPath)
    : null,
});

registry.loadGrammar('source.mmscn').then((grammar) => {
  const out = {};
  for (const file of process.argv.slice(2)) {
    const rows = [];
    let state = vsctm.INITIAL;
    fs.readFileSync(file, 'utf8').split('\n').forEach((line, i) => {
      const r = grammar.tokenizeLine(line, state);
      for (const t of r.tokens) {
        rows.push([i + 1, t.startIndex, Math.min(t.endIndex, line.length),
                   line.slice(t.startIndex, t.endIndex), t.scopes]);
      }
      state = r.ruleStack;
    });
    out[file] = rows;
  }
  process.stdout.write(JSON.stringify(out));
}).catch((e) => { console.error(String(e)); process.exit(2); });
