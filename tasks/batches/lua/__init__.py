"""The Batch API's Lua scripts: the .lua files beside this module (package data), each reading
its KEYS and ARGV into named locals at its top, loaded as tasks.lua loads the task scripts, so
callers build both by name."""

from tasks import lua

MOVE = lua.load("move", package=__package__)
PROGRESS = lua.load("progress", package=__package__)
SKIP = lua.load("skip", package=__package__)
RELEASE = lua.load("release", package=__package__)
