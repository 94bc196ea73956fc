"""The command line: options in, one library call, messages and exit codes out (app, commands, terminal)."""
