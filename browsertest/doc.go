// Package browsertest holds the tests that need a real browser: they open a page of the
// project in headless Chromium, driven by chromedp, and press its buttons as a person
// would. It is a module of its own, so that the root module does not depend on a
// browser driver; it imports the root module through the replace directive in its
// go.mod.
//
// The tests find Chromium with testenv.ChromiumPath ($SCALEOUT_CHROMIUM, which
// scripts/services.sh env exports, else chromium in $PATH); without it they skip, or
// fail under SCALEOUT_REQUIRE_SERVICES=1. Run them from this folder:
//
//	eval "$(../scripts/services.sh env)" && SCALEOUT_REQUIRE_SERVICES=1 go test -race ./...
package browsertest
