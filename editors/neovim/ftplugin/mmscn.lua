-- Neovim's built-in LSP client for .mmscn scenarios: starts `mmscn lsp` for the buffer.
-- Put editors/vim (filetype, syntax) and editors/neovim (this file) on 'runtimepath'.
--   vim.g.mmscn_lsp_cmd       the server command, default { "mmscn", "lsp" }
--   vim.g.mmscn_lsp_settings  the `mmscn` settings, e.g. { inlayHints = false, explore = { maxSeconds = 30 } }
local cmd = vim.g.mmscn_lsp_cmd or { "mmscn", "lsp" }
local settings = vim.g.mmscn_lsp_settings or vim.empty_dict()
local buf = vim.api.nvim_get_current_buf()
local config = {
  name = "mmscn",
  cmd = cmd,
  root_dir = vim.fn.fnamemodify(vim.api.nvim_buf_get_name(buf), ":p:h"),
  init_options = { mmscn = settings },
  settings = { mmscn = settings },
}

if vim.lsp.start then
  -- Neovim 0.8 and later: reuses the client whose name and root match
  vim.lsp.start(config)
else
  -- Neovim 0.7: one client for every mmscn buffer, started once
  local id = vim.g.mmscn_lsp_client
  if not id or not vim.lsp.get_client_by_id(id) then
    id = vim.lsp.start_client(config)
    vim.g.mmscn_lsp_client = id
  end
  if id then
    vim.lsp.buf_attach_client(buf, id)
  end
end

-- the keys Neovim 0.10 maps by itself, for older versions
local function map(lhs, fn)
  vim.keymap.set("n", lhs, fn, { buffer = buf, silent = true })
end
map("K", vim.lsp.buf.hover)
map("gd", vim.lsp.buf.definition)
map("gr", vim.lsp.buf.references)
vim.bo[buf].omnifunc = "v:lua.vim.lsp.omnifunc"
-- the `explore` / `write witness` lenses of files with per-CPU blocks (run one with :lua vim.lsp.codelens.run())
vim.api.nvim_create_autocmd({ "BufEnter", "BufWritePost", "InsertLeave" }, {
  buffer = buf,
  callback = function() pcall(vim.lsp.codelens.refresh) end,
})
