// The mmscn language client: VS Code starts `mmscn lsp` (the setting mmscn.path) for
// .mmscn files and shows what it says: diagnostics as you type, the kernel state on
// hover, inlay hints, the explore verdict and witness lenses of files with per-CPU blocks.
// The TextMate grammar (syntaxes/) still colours the text; semantic tokens refine it.
'use strict';
const vscode = require('vscode');
const { LanguageClient, TransportKind } = require('vscode-languageclient/node');

let client;

function settings() {
  const c = vscode.workspace.getConfiguration('mmscn');
  return {
    inlayHints: c.get('inlayHints'),
    debounceMs: c.get('debounceMs'),
    explore: { onSave: c.get('explore.onSave'), maxStates: c.get('explore.maxStates'),
               maxSeconds: c.get('explore.maxSeconds') },
  };
}

async function start() {
  const command = vscode.workspace.getConfiguration('mmscn').get('path') || 'mmscn';
  client = new LanguageClient('mmscn', 'mmscn language server',
    { command, args: ['lsp'], transport: TransportKind.stdio },
    {
      documentSelector: [{ language: 'mmscn' }],
      initializationOptions: { mmscn: settings() },
      // sends workspace/didChangeConfiguration with the `mmscn` section when it changes
      synchronize: { configurationSection: 'mmscn' },
    });
  try {
    await client.start();
  } catch (e) {
    client = undefined;
    vscode.window.showErrorMessage(`mmscn: cannot start \`${command} lsp\` (${e.message || e}); ` +
      'set mmscn.path to the mmscn command, for example the one in your virtual environment');
  }
}

function activate(context) {
  context.subscriptions.push(vscode.workspace.onDidChangeConfiguration(async (e) => {
    if (e.affectsConfiguration('mmscn.path')) {
      if (client) await client.stop();
      await start();
    }
  }));
  return start();
}

function deactivate() {
  return client ? client.stop() : undefined;
}

module.exports = { activate, deactivate };
