// Package commands is rivetr's Dokku-style command language: one registry
// of `namespace:subcommand` commands served alike over SSH, the local CLI
// (unix socket) and the API. It owns argument parsing, global flags
// (--app, --force, --quiet anywhere), help, output conventions
// ("-----> ", "=====> ", 7-space details, " !     " errors on stderr) and the
// mapping of core errors to exit codes. The core namespaces (apps, config,
// ssh-keys, version, help) live here; other packages register their own.
package commands
