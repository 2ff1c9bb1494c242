-- Potion for Neovim: starts `potion lsp --stdio` for Elixir buffers.
--
--   require("potion").setup{}            -- defaults
--   require("potion").setup{ cmd = { "/path/to/.venv/bin/potion", "lsp", "--stdio" },
--                            settings = { debounceMs = 100, model = "qwen2.5-coder-1.5b" } }
--
-- Neovim >= 0.12 shows AI suggestions as ghost text (vim.lsp.inline_completion, accept with <Tab>);
-- 0.11 gets them in the completion menu (vim.lsp.completion with autotrigger); older versions
-- through the omnifunc (<C-x><C-o>). Works from Neovim 0.7 on (vim.lsp.start_client before 0.8).

local M = {}

-- The same shape the VS Code extension sends as initializationOptions and settings.potion.
-- Optional keys left out here: `model` (registry name, hf:OWNER/REPO/FILE.gguf or a .gguf path; absent:
-- the default model) and `backendUrl` (an OpenAI-compatible server; absent: llama.cpp in-process).
local default_settings = {
  debounceMs = 150,
  maxTokens = 64,
  timeBudgetMs = 5000,
  inlineCompletion = true,
  elixirCompletion = true,
  hover = true,
  codeActions = true,
  telemetry = true,
  latencyWarningMs = 5000,
  canary = { share = 0 }, -- A/B test: { model = "NAME", share = 0.1 [, backendUrl = "URL"] }
}

M.defaults = {
  cmd = { "potion", "lsp", "--stdio" },
  filetypes = { "elixir", "eelixir", "heex" },
  root_markers = { "mix.exs", ".git" },
  settings = default_settings,
  -- Key that accepts the shown ghost text on Neovim >= 0.12 (falls through when none is shown).
  accept_key = "<Tab>",
  -- Use omnifunc/vim.lsp.completion for AI items where inline completion is missing.
  completion_fallback = true,
  on_attach = nil, -- function(client, bufnr), run after Potion's own setup of the buffer
  capabilities = nil, -- extra client capabilities, merged over Neovim's defaults
}

M.config = vim.deepcopy(M.defaults)

local function has(feature)
  return vim.fn.has(feature) == 1
end

-- Find the project root from the buffer's file: the nearest mix.exs (an umbrella app's own mix.exs
-- is fine: the server indexes deps/ relative to it), else the file's folder.
local function root_dir(bufnr)
  local name = vim.api.nvim_buf_get_name(bufnr)
  local start = name ~= "" and vim.fn.fnamemodify(name, ":p:h") or vim.fn.getcwd()
  for _, marker in ipairs(M.config.root_markers) do
    local found = vim.fn.findfile(marker, start .. ";")
    if found == "" then
      found = vim.fn.finddir(marker, start .. ";")
    end
    if found ~= "" then
      local dir = vim.fn.fnamemodify(found, ":p:h"):gsub("/%.git/?$", "")
      return dir
    end
  end
  return start
end

--- Accept the shown inline suggestion (nil: nothing to type), else the accept key itself, so <Tab>
--- still indents when no ghost text is shown. Used as an `expr` insert-mode mapping.
function M.accept_or_key()
  if vim.lsp.inline_completion and vim.lsp.inline_completion.get() then
    return nil
  end
  return M.config.accept_key
end

-- The server advertises inline completion only to clients that declare it (Neovim >= 0.12): ghost text
-- is turned on from what it answered, not from the version alone.
local function server_has_inline_completion(client)
  local provider = (client.server_capabilities or {}).inlineCompletionProvider
  return provider ~= nil and provider ~= false
end

-- Neovim 0.11's vim.lsp.completion inserts a plain-text item's `textEdit.newText` only up to its first
-- space (the item's `word`): the model's suggestion ("map(list, fn x -> x + 1 end)", or a block) was cut to
-- "map(list,". Potion's AI item is handed to it as a snippet instead (the text escaped), which it inserts
-- whole on accept, and then runs the item's command (the acceptance, for `potion stats`).
local function snippet_escape(text)
  return (text:gsub("[\\$}]", "\\%0"))
end

local function ai_item_as_snippet(client)
  return function(item)
    local is_ai = item.labelDetails and item.labelDetails.description == "Potion AI"
    if not is_ai or not item.textEdit or item.insertTextFormat == 2 then
      return {}
    end
    local snippet = vim.deepcopy(item)
    snippet.insertTextFormat = 2
    snippet.textEdit.newText = snippet_escape(item.textEdit.newText)
    return { user_data = { nvim = { lsp = { completion_item = snippet, client_id = client.id } } } }
  end
end

local function set_up_buffer(client, bufnr)
  if has("nvim-0.12") and vim.lsp.inline_completion and server_has_inline_completion(client) then
    vim.lsp.inline_completion.enable(true, { bufnr = bufnr })
    if M.config.accept_key then
      vim.keymap.set("i", M.config.accept_key, M.accept_or_key, {
        buffer = bufnr,
        expr = true,
        replace_keycodes = true,
        desc = "Potion: accept suggestion",
      })
    end
  elseif M.config.completion_fallback then
    if vim.lsp.completion and vim.lsp.completion.enable then
      vim.lsp.completion.enable(true, client.id, bufnr, { autotrigger = true, convert = ai_item_as_snippet(client) })
    else
      vim.api.nvim_buf_set_option(bufnr, "omnifunc", "v:lua.vim.lsp.omnifunc")
    end
  end
  if M.config.on_attach then
    M.config.on_attach(client, bufnr)
  end
end

local function client_config(bufnr)
  local capabilities = vim.lsp.protocol.make_client_capabilities()
  if M.config.capabilities then
    capabilities = vim.tbl_deep_extend("force", capabilities, M.config.capabilities)
  end
  return {
    name = "potion",
    cmd = M.config.cmd,
    root_dir = root_dir(bufnr),
    capabilities = capabilities,
    init_options = M.config.settings,
    -- Neovim sends these in workspace/didChangeConfiguration right after initialize.
    settings = { potion = M.config.settings },
    on_attach = set_up_buffer,
  }
end

-- Clients started through vim.lsp.start_client on Neovim < 0.8, one per root folder.
local legacy_clients = {}

--- Attach Potion to a buffer, starting the server for its project if needed.
function M.attach(bufnr)
  bufnr = bufnr or vim.api.nvim_get_current_buf()
  local config = client_config(bufnr)
  if vim.lsp.start then
    return vim.lsp.start(config, { bufnr = bufnr })
  end
  local id = legacy_clients[config.root_dir]
  if not id or not vim.lsp.get_client_by_id(id) then
    id = vim.lsp.start_client(config)
    if not id then
      vim.notify("potion: could not start " .. table.concat(M.config.cmd, " "), vim.log.levels.ERROR)
      return nil
    end
    legacy_clients[config.root_dir] = id
  end
  vim.lsp.buf_attach_client(bufnr, id)
  return id
end

local function potion_client(bufnr)
  local clients = vim.lsp.get_clients and vim.lsp.get_clients({ bufnr = bufnr, name = "potion" })
    or vim.tbl_filter(function(c)
      return c.name == "potion"
    end, vim.lsp.buf_get_clients(bufnr))
  return clients[1]
end

--- Run a `workspace/executeCommand` of the server (potion.newModule, potion.addMissingCallbacks, ...).
function M.execute(command, arguments, on_result)
  local bufnr = vim.api.nvim_get_current_buf()
  local client = potion_client(bufnr)
  if not client then
    vim.notify("potion: no Potion language server attached to this buffer", vim.log.levels.WARN)
    return
  end
  local params = { command = command, arguments = arguments }
  local function handler(err, result)
    if err then
      vim.notify("potion: " .. (err.message or tostring(err)), vim.log.levels.ERROR)
    elseif on_result then
      on_result(result)
    end
  end
  -- 0.11 made client methods take self (client:request); older versions have plain functions.
  if has("nvim-0.11") then
    client:request("workspace/executeCommand", params, handler, bufnr)
  else
    client.request("workspace/executeCommand", params, handler, bufnr)
  end
end

--- :PotionNewModule genserver MyApp.Worker: create lib/my_app/worker.ex from an OTP scaffold.
function M.new_module(kind, module)
  M.execute("potion.newModule", { { kind = kind, module = module } }, function(result)
    if result and result.uri then
      vim.cmd("edit " .. vim.fn.fnameescape(vim.uri_to_fname(result.uri)))
    end
  end)
end

function M.setup(opts)
  M.config = vim.tbl_deep_extend("force", vim.deepcopy(M.defaults), opts or {})
  local group = vim.api.nvim_create_augroup("potion", { clear = true })
  vim.api.nvim_create_autocmd("FileType", {
    group = group,
    pattern = M.config.filetypes,
    callback = function(args)
      M.attach(args.buf)
    end,
  })
  vim.api.nvim_create_user_command("PotionNewModule", function(args)
    local kind, module = args.fargs[1], args.fargs[2]
    if not kind or not module then
      vim.notify("usage: :PotionNewModule KIND Module.Name (e.g. genserver MyApp.Worker)", vim.log.levels.ERROR)
      return
    end
    M.new_module(kind, module)
  end, { nargs = "+", desc = "Potion: new OTP module from a scaffold" })
  vim.api.nvim_create_user_command("PotionSettings", function(args)
    -- :PotionSettings debounceMs=100 hover=false: push new settings to the running server.
    for _, pair in ipairs(args.fargs) do
      local key, value = pair:match("^([%w_.]+)=(.*)$")
      if key then
        local parsed = tonumber(value)
        if value == "true" or value == "false" then
          parsed = value == "true"
        end
        local target, last = M.config.settings, key
        for part, rest in key:gmatch("([^.]+)(%.?)") do
          if rest == "." then
            target[part] = target[part] or {}
            target = target[part]
          else
            last = part
          end
        end
        target[last] = parsed == nil and value or parsed
      end
    end
    local client = potion_client(vim.api.nvim_get_current_buf())
    if client then
      local params = { settings = { potion = M.config.settings } }
      if has("nvim-0.11") then
        client:notify("workspace/didChangeConfiguration", params)
      else
        client.notify("workspace/didChangeConfiguration", params)
      end
    end
  end, { nargs = "*", desc = "Potion: change server settings (key=value ...)" })
  -- Buffers already open when setup runs (lazy loading) get attached too.
  for _, bufnr in ipairs(vim.api.nvim_list_bufs()) do
    if vim.api.nvim_buf_is_loaded(bufnr) and vim.tbl_contains(M.config.filetypes, vim.bo[bufnr].filetype) then
      M.attach(bufnr)
    end
  end
end

return M
