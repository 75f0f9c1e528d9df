-- SPDX-License-Identifier: BSD-3-Clause
-- binary-trees: the allocation benchmark of the Computer Language
-- Benchmarks Game (after Hans Boehm's GC bench), written for slabkit.
-- Builds and walks many short-lived perfect binary trees next to one
-- long-lived tree; every node is a Lua table, so the Lua allocator
-- (realloc-based, lua_Alloc) and the GC drive malloc/free hard.
-- Usage: lua5.4 binary-trees.lua [maxdepth]

local function make(depth)
	if depth == 0 then
		return {}
	end
	depth = depth - 1
	return { make(depth), make(depth) }
end

local function check(tree)
	if tree[1] then
		return 1 + check(tree[1]) + check(tree[2])
	end
	return 1
end

local mindepth = 4
local maxdepth = math.max(mindepth + 2, tonumber(arg and arg[1]) or 15)

local stretch = maxdepth + 1
io.write(string.format("stretch tree of depth %d\t check: %d\n",
	stretch, check(make(stretch))))

local longlived = make(maxdepth)

for depth = mindepth, maxdepth, 2 do
	local iters = 1 << (maxdepth - depth + mindepth)
	local sum = 0
	for _ = 1, iters do
		sum = sum + check(make(depth))
	end
	io.write(string.format("%d\t trees of depth %d\t check: %d\n",
		iters, depth, sum))
end

io.write(string.format("long lived tree of depth %d\t check: %d\n",
	maxdepth, check(longlived)))
