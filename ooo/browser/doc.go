// Package browser holds no code. Its test checks the ooo server's REST and websocket
// protocol with the published JavaScript client (npm ooo-client, pinned in
// testdata/package.json) running in headless Chromium: the client must rebuild, message
// after message, exactly the state the server holds.
//
// The test needs /usr/bin/chromium (Debian's chromium package, or chromium on PATH) and
// testdata/node_modules (npm ci in testdata). .ci/run installs both. When either is
// missing the test fails if the environment variable CI is "true", and is skipped with
// a message saying what to install otherwise.
package browser
