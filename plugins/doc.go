// Package plugins makes plugins a manageable feature, the way Dokku's
// plugin authors know it. A plugin is a directory under
// $RIVETR_DATA_DIR/plugins holding plugin.toml ([plugin] description and
// version, optional [plugin.config] defaults), executable trigger files
// named after hook points (run by package hooks), and optional `commands`
// and `subcommands/<name>` executables that add `NAME:SUB` commands.
// The Manager installs (from a directory or a git repository, with
// go-git), updates, uninstalls, enables and disables plugins and keeps
// their config; Register adds the plugin:* namespace and serves the
// plugins' commands through the command registry.
package plugins
