// Package e2e holds rivetr's end-to-end tests. They build the real binary
// once, start `rivetr serve` on loopback ports in a temporary data dir, and
// drive it the way users do: through the local CLI over the daemon's unix
// socket, and through the real OpenSSH client (and, for later features, the
// real git client). Nothing in the package is used by the product.
package e2e
