// Package services runs managed databases beside the apps, in Dokku's
// service-plugin language: PostgreSQL, MySQL, MariaDB, MongoDB and Redis.
// One definition per engine (engines.go) says its image, port,
// environment, data path, URL, readiness probe, client and dump/restore
// commands; the Manager creates each service as a container on the rivetr
// network (named rivetr.ENGINE.NAME, reachable at rivetr-ENGINE-NAME) with
// its data in a named volume, links it to apps through a URL in their
// config, and backs it up. It drives containers through apps.Runtime only.
package services
