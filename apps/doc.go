// Package apps is rivetr's core: the App and its configuration, the rules
// names must follow, the errors the rest of the program maps to exit codes,
// and the small interfaces (Store, ...) that adapters implement.
//
// It imports the standard library only; every adapter may import it, and it
// imports none of them.
package apps
