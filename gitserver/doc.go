// Package gitserver is rivetr's SSH front door (github.com/gliderlabs/ssh):
// public-key authentication against the keys added with ssh-keys:add, and
// exec requests handed to the command language with the exit status sent
// back. git-receive-pack and git-upload-pack are routed here too.
package gitserver
