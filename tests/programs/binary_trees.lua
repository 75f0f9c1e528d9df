-- SPDX-License-Identifier: BSD-3-Clause
-- The binary-trees benchmark (allocate and walk many short-lived trees),
-- for the drop-in's real-program test.  usage: lua5.4 binary_trees.lua [N]
local function bottom_up_tree(depth)
	if depth > 0 then
		depth = depth - 1
		return { bottom_up_tree(depth), bottom_up_tree(depth) }
	end
	return {}
end

local function item_check(tree)
	if tree[1] then
		return 1 + item_check(tree[1]) + item_check(tree[2])
	end
	return 1
end

local N = tonumber(arg and arg[1]) or 14
local mindepth = 4
local maxdepth = math.max(mindepth + 2, N)

local stretch = maxdepth + 1
print(string.format("stretch tree of depth %d\t check: %d", stretch,
	item_check(bottom_up_tree(stretch))))

local long_lived = bottom_up_tree(maxdepth)

for depth = mindepth, maxdepth, 2 do
	local iterations = 2 ^ (maxdepth - depth + mindepth)
	local check = 0
	for _ = 1, iterations do
		check = check + item_check(bottom_up_tree(depth))
	end
	print(string.format("%d\t trees of depth %d\t check: %d",
		iterations, depth, check))
end

print(string.format("long lived tree of depth %d\t check: %d", maxdepth,
	item_check(long_lived)))

-- strings and tables of strings: the other half of Lua's allocations
local t = {}
for i = 1, 200000 do
	t[#t + 1] = string.rep(string.char(65 + i % 26), i % 40) .. i
end
local n = 0
for _, s in ipairs(t) do
	n = n + #s
end
print("strings", #t, n, table.concat(t, "", 1, 50):len())
