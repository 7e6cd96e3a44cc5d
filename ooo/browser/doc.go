// Package browser holds no code. Its tests check the ooo server's REST and websocket
// protocol with the published JavaScript client (npm ooo-client, pinned in
// testdata/package.json) running in headless Chromium: the client must rebuild, message
// after message, exactly the state the server holds (TestBrowser_OooClient), and follow
// a list of 10,000 entries on a node of a pivot cluster while writes, pushes and deletes
// are made on another node and on the pivot, ending equal to a GET of its node and
// printing the median write → browser latency (TestBrowser_ClusterList, run with -v to
// see it).
//
// The test needs /usr/bin/chromium (Debian's chromium package, or chromium on PATH) and
// testdata/node_modules (npm ci in testdata). .ci/run installs both. When either is
// missing the test fails if the environment variable CI is "true", and is skipped with
// a message saying what to install otherwise.
package browser
