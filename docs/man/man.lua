-- SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
-- pandoc filter: a page of docs/ (Markdown, read on the web) as a man page.
--  - "# kmemscope-stat(1)" names the page (title and section) and is dropped;
--    the other headings go up a level (## NAME is .SH NAME).
--  - A paragraph that is only a link titled "include" ([text](file.md
--    "include")) is replaced by that file, so options shared by several
--    commands are written once and each page lists them all.
--  - Links to other pages of the docs keep their text only: the man page
--    names them (kmemscope-leaks(1), json-schema.md) in the text.
local dir = "."

local function is_include(blocks)
  return #blocks == 1 and blocks[1].t == "Link" and blocks[1].title == "include"
end

local function relative(url)
  return not url:match("^%a[%w+.-]*:") and not url:match("^#")
end

local function shift(doc, meta)
  local out = {}
  for _, b in ipairs(doc.blocks) do
    if b.t == "Header" and b.level == 1 then
      local name, sec = pandoc.utils.stringify(b.content):match("^(.-)%((%d)%)$")
      if not name then
        error("the first heading must be 'name(section)', not '" ..
              pandoc.utils.stringify(b.content) .. "'")
      end
      meta.title = pandoc.MetaInlines({ pandoc.Str(name:upper()) })
      meta.section = pandoc.MetaInlines({ pandoc.Str(sec) })
    elseif b.t == "Para" and is_include(b.content) then
      local path = dir .. "/" .. b.content[1].target
      local f = assert(io.open(path, "r"), "cannot include " .. path)
      local inc = pandoc.read(f:read("a"), "markdown")
      f:close()
      for _, ib in ipairs(shift(inc, meta)) do
        table.insert(out, ib)
      end
    else
      if b.t == "Header" then
        b.level = b.level - 1
      end
      table.insert(out, b)
    end
  end
  return out
end

-- A table as a list: each row under its first cell, its other cells named by
-- their column's heading. tbl cannot fit the docs' wide tables in 80 columns.
local function table_as_list(t)
  local heads = {}
  if #t.head.rows > 0 then
    for i, c in ipairs(t.head.rows[1].cells) do
      heads[i] = pandoc.utils.blocks_to_inlines(c.contents)
    end
  end
  local items = {}
  for _, body in ipairs(t.bodies) do
    for _, row in ipairs(body.body) do
      local defs = {}
      for i, c in ipairs(row.cells) do
        local text = pandoc.utils.blocks_to_inlines(c.contents)
        if i > 1 and #text > 0 then
          local line = {}
          if heads[i] and #heads[i] > 0 then
            line = { pandoc.Emph(heads[i]), pandoc.Str(":"), pandoc.Space() }
          end
          for _, x in ipairs(text) do
            table.insert(line, x)
          end
          table.insert(defs, pandoc.Plain(line))
        end
      end
      table.insert(items, { pandoc.utils.blocks_to_inlines(row.cells[1].contents), { defs } })
    end
  end
  return pandoc.DefinitionList(items)
end

local function text_only(l)
  if relative(l.target) then
    return l.content
  end
end

function Pandoc(doc)
  dir = pandoc.path.directory(PANDOC_STATE.input_files[1])
  local blocks = pandoc.walk_block(pandoc.Div(shift(doc, doc.meta)), { Link = text_only,
                                                                    Table = table_as_list })
  if not doc.meta.title then
    error("no '# name(section)' heading")
  end
  doc.meta.footer = "kmemscope " .. (doc.meta.version or "")
  doc.meta.header = "kmemscope manual"
  -- ragged right, no hyphens: narrow table cells cannot be adjusted
  table.insert(blocks.content, 1, pandoc.RawBlock("man", ".na\n.nh"))
  return pandoc.Pandoc(blocks.content, doc.meta)
end
