// Package hooks runs the handlers registered on rivetr's hook points: the
// in-process Go hooks of built-in features and the trigger executables of
// plugins under $RIVETR_DATA_DIR/plugins. It implements apps.Hooks.
//
// # Hook points
//
// Hook points carry Dokku's plugin trigger names and arguments, so a Dokku
// plugin author recognises them. Arguments are positional ($1, $2, ...);
// an argument that does not apply is passed as an empty string, never
// dropped, so later positions keep their meaning.
//
//	trigger               constant            arguments                                   stdout
//	post-create           PostCreate          APP                                         -
//	pre-delete            PreDelete           APP                                         -
//	post-delete           PostDelete          APP                                         -
//	post-extract          PostExtract         APP TMP_WORK_DIR REV                        -
//	builder-detect        BuilderDetect       APP SOURCECODE_WORK_DIR                     builder name
//	pre-build             PreBuild            BUILDER_TYPE APP SOURCECODE_WORK_DIR        -
//	post-build            PostBuild           BUILDER_TYPE APP SOURCECODE_WORK_DIR        -
//	pre-release-builder   PreReleaseBuilder   BUILDER_TYPE APP IMAGE                      -
//	post-release-builder  PostReleaseBuilder  BUILDER_TYPE APP IMAGE                      -
//	docker-args-build     DockerArgsBuild     APP BUILDER_TYPE                            docker build options
//	docker-args-deploy    DockerArgsDeploy    APP IMAGE_TAG [PROC_TYPE CONTAINER_INDEX]   docker run options
//	docker-args-run       DockerArgsRun       APP IMAGE_TAG                               docker run options
//	pre-deploy            PreDeploy           APP IMAGE_TAG                               -
//	check-deploy          CheckDeploy         APP CONTAINER_ID PROC_TYPE PORT IP          -
//	post-deploy           PostDeploy          APP PORT IP IMAGE_TAG                       -
//	post-config-update    PostConfigUpdate    APP set|unset|clear KEY...                  -
//	post-domains-update   PostDomainsUpdate   APP add|remove|set|clear DOMAIN...          -
//	install               (plugin:install)    -                                           -
//	update                (plugin:update)     -                                           -
//	uninstall             (plugin:uninstall)  -                                           -
//
// When they run:
//
//   - post-create: after apps:create stored the app.
//   - pre-delete: before apps:destroy removes anything; a failure keeps the
//     app. post-delete: after it is gone. (Dokku also passes IMAGE_TAG to
//     both; rivetr passes the app only.)
//   - post-extract: the pushed revision has been checked out into
//     TMP_WORK_DIR and may be edited there, before the builder is chosen.
//     REV is empty for sources that are not a git push.
//   - builder-detect: prints the name of the builder to use for the tree in
//     SOURCECODE_WORK_DIR (dockerfile, ...) or nothing; the first non-empty
//     line of the joined output wins.
//   - pre-build / post-build: around the image build of BUILDER_TYPE, with
//     the source tree still in SOURCECODE_WORK_DIR. A pre-build failure
//     aborts the push.
//   - pre-release-builder / post-release-builder: around the release step
//     of the built IMAGE (the full image reference).
//   - docker-args-build / docker-args-deploy: print extra docker options
//     (one or more, shell-quoted) that are added to the build or to every
//     container of the release; PROC_TYPE is "_all_" for options meant for
//     every process type. Unlike Dokku's chained stdin, every handler reads
//     the caller's stdin in full and outputs are joined, so a handler prints
//     only its own options. A Dokku handler that prints "$STDIN" followed
//     by its options still works: callers of these points pass no stdin.
//   - pre-deploy: before the new containers start; IMAGE_TAG is the image
//     the release runs. A failure aborts the deploy and the old release
//     keeps serving.
//   - check-deploy: once per new container after it started and before it
//     receives traffic; a failure counts as a failed check.
//   - post-deploy: after traffic switched to the new containers and before
//     the old ones are retired.
//   - post-config-update: after config:set|unset|clear. Only the keys are
//     passed, never the values: argv is readable by every local user. A
//     handler that needs a value reads the app's config itself.
//   - post-domains-update: after domains:add|remove|set|clear, with the
//     domains of the command (none for clear).
//   - install / update / uninstall: only the plugin being installed,
//     updated or removed runs its own; a failing install removes the plugin
//     again, a failing uninstall keeps it (unless --force).
//
// Built-in features run on the same points in-process, before plugins:
// builder-detect "builder" prints the builder of builder:set APP selected;
// docker-args-build, docker-args-deploy and docker-args-run
// "docker-options" print docker-options' build, deploy and run phases.
// docker-args-run (APP IMAGE_TAG) is called for one-off run containers.
//
// # Order and results
//
// Run runs the in-process hooks of a point first, in registration order
// (the built-in features are core; plugins see their effect), then the
// plugins' executables in lexical order of the plugin directory's name,
// like Dokku's plugn. It stops at the first failure and returns it; a
// failing pre-hook therefore aborts its step, and the caller decides
// whether a post-hook's failure matters. The result is the trimmed stdout
// of every handler, those that printed something joined with "\n".
//
// # Plugin layout
//
//	$RIVETR_DATA_DIR/plugins/<plugin>/<trigger>
//
// A trigger file is an executable named after its hook point; it is run
// directly (no shell: a script needs a #! line). Plugin directory names
// must match ^[a-z0-9][a-z0-9_-]*$ (others are skipped); a plugin whose
// directory holds a file named .disabled, or that Config.Disabled reports,
// is skipped. Files that are not executable regular files are ignored, and
// symbolic links (of a plugin directory or a trigger file) that resolve
// outside the plugins directory are skipped.
//
// # Environment of an external run
//
// A trigger does not inherit rivetr's environment. It gets:
//
//	PATH                 Config.Path (default DefaultPath)
//	HOME                 the data directory
//	RIVETR_DATA_DIR      the data directory
//	RIVETR_PLUGINS_DIR   the directory holding all plugins
//	RIVETR_PLUGIN_PATH   this plugin's directory (also the working directory)
//	RIVETR_PLUGIN_NAME   this plugin's name
//	RIVETR_TRIGGER       the hook point being run
//
// plus the plugin's config (Config.PluginEnv: RIVETR_PLUGIN_CONFIG_<KEY>
// for each key of [plugin.config] in its plugin.toml, as plugin:set left
// it) and the caller's Opts.Env (RIVETR_APP, the app the pipeline works
// on), neither of which can override the variables above. Stdin is the
// caller's Opts.Stdin (read once, at most MaxStdin bytes, and given in full
// to every handler; empty if none). Stdout is captured as the return value
// (at most MaxOutput bytes per run; the rest is discarded); for every point
// but those in ValuePoints (builder-detect, docker-args-*) it is also
// streamed to Opts.Out, the user's terminal during a deploy. Stderr is
// streamed to Opts.Out and its last StderrTail bytes are kept for the error
// message. Each run has a timeout (Config.Timeout: RIVETR_HOOK_TIMEOUT,
// default DefaultTimeout); when it expires, or the caller's context ends,
// the trigger's whole process group is killed and the error says
// "PLUGIN/TRIGGER timed out after D and was killed".
//
// Exec runs a plugin's command executables (commands, subcommands/NAME)
// the same way, with the caller's streams and no timeout. A trigger must not leave children holding its stdout or
// stderr: they are closed shortly after it exits.
package hooks
