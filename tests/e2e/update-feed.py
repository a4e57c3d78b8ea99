#!/usr/bin/env python3
"""A local stand-in for WordPress.org's update service, for the update tests.

    update-feed.py serve DIR      serves on 127.0.0.1, a free port; prints the port first
    update-feed.py fixtures DIR   writes the fixture plugin's zips into DIR

The node's WordPress is pointed at it with the `wordpress_update_source` setting
(http://127.0.0.1:PORT): the PHP bridge sends requests for api.wordpress.org there, same path.

Answers, in the shape of api.wordpress.org:
  POST /plugins/update-check/1.1/   the highest DIR/plugins/<slug>/<version>.zip newer than
                                    the installed version of the plugin <slug>/<slug>.php
  POST /themes/update-check/1.1/    the same from DIR/themes/<slug>/<version>.zip
  POST /core/version-check/1.7/     "latest" for the version asked about (no core update)
  GET  /packages/<kind>/<slug>/<version>.zip   the package
A file DIR/unavailable makes every update-check answer 503 (the update service is down).
Python 3 standard library only.
"""

import json
import os
import sys
import urllib.parse
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

FIXTURE = "pressluft-fixture"


def version_key(version):
    return tuple(int(p) if p.isdigit() else 0 for p in version.split("."))


def newest(root, kind, slug):
    """The newest version offered for slug, or None."""
    d = os.path.join(root, kind, slug)
    if not os.path.isdir(d):
        return None
    versions = [f[:-4] for f in os.listdir(d) if f.endswith(".zip")]
    return max(versions, key=version_key) if versions else None


class Feed(BaseHTTPRequestHandler):
    root = "."

    def log_message(self, fmt, *args):
        sys.stderr.write("update-feed: " + (fmt % args) + "\n")

    def answer(self, status, body, content_type="application/json"):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def base(self):
        return "http://" + self.headers.get("Host", "127.0.0.1")

    def down(self):
        return os.path.exists(os.path.join(self.root, "unavailable"))

    def form(self):
        length = int(self.headers.get("Content-Length") or 0)
        return urllib.parse.parse_qs(self.rfile.read(length).decode())

    def offers(self, kind, installed):
        """installed: id -> (slug, version); the answer's `<kind>` and `no_update` maps."""
        response, no_update = {}, {}
        for ident, (slug, version) in installed.items():
            new = newest(self.root, kind, slug)
            entry = {"slug": slug, "new_version": new or version,
                     "url": f"{self.base()}/{kind}/{slug}/",
                     "package": f"{self.base()}/packages/{kind}/{slug}/{new}.zip"}
            if kind == "plugins":
                entry.update({"id": f"local/{slug}", "plugin": ident})
            else:
                entry["theme"] = ident
            if new and version_key(new) > version_key(version):
                response[ident] = entry
            else:
                no_update[ident] = entry
        return response, no_update

    def do_POST(self):
        path = urllib.parse.urlparse(self.path).path.rstrip("/")
        if path == "/core/version-check/1.7":
            self.form()
            return self.core()
        if path not in ("/plugins/update-check/1.1", "/themes/update-check/1.1"):
            return self.answer(404, {"error": "not found"})
        if self.down():
            return self.answer(503, {"error": "unavailable"})
        form = self.form()
        if path.startswith("/plugins"):
            sent = json.loads(form.get("plugins", ["{}"])[0]).get("plugins", {})
            installed = {f: (f.split("/")[0], h.get("Version", "0")) for f, h in sent.items()}
            response, no_update = self.offers("plugins", installed)
            return self.answer(200, {"plugins": response, "translations": [], "no_update": no_update})
        sent = json.loads(form.get("themes", ["{}"])[0]).get("themes", {})
        installed = {s: (s, h.get("Version", "0")) for s, h in sent.items()}
        response, no_update = self.offers("themes", installed)
        return self.answer(200, {"themes": response, "translations": [], "no_update": no_update})

    def do_GET(self):
        url = urllib.parse.urlparse(self.path)
        path = url.path.rstrip("/")
        if path == "/core/version-check/1.7":
            return self.core()
        parts = path.split("/")
        if len(parts) == 5 and parts[1] == "packages" and parts[2] in ("plugins", "themes"):
            _, _, kind, slug, file = parts
            if "/" in slug or slug.startswith(".") or not file.endswith(".zip") or file.startswith("."):
                return self.answer(404, {"error": "not found"})
            full = os.path.join(self.root, kind, slug, file)
            if os.path.isfile(full):
                with open(full, "rb") as f:
                    return self.answer(200, f.read(), "application/zip")
        return self.answer(404, {"error": "not found"})

    def core(self):
        """No core update: "latest" for the version asked about."""
        if self.down():
            return self.answer(503, {"error": "unavailable"})
        url = urllib.parse.urlparse(self.path)
        version = urllib.parse.parse_qs(url.query).get("version", ["0"])[0]
        offer = {"response": "latest", "download": "", "locale": "en_US",
                 "packages": {"full": "", "no_content": "", "new_bundled": "",
                              "partial": "", "rollback": ""},
                 "current": version, "version": version, "php_version": "5.6.20",
                 "mysql_version": "5.0", "new_bundled": version, "partial_version": ""}
        return self.answer(200, {"offers": [offer], "translations": []})


def plugin_zip(path, version, body):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    header = (f"<?php\n/**\n * Plugin Name: Pressluft Fixture\n * Version: {version}\n"
              " * Description: A plugin for Pressluft's update tests.\n */\n")
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(f"{FIXTURE}/", "")
        z.writestr(f"{FIXTURE}/{FIXTURE}.php", header + body)


# v1.2's visible change: the theme's header (Twenty Twenty-Three, the e2e sites' theme: the block
# template part <header class="wp-block-template-part">; classic themes' #masthead /
# .site-header) turns a strong red, its site title white.
RED_HEADER = (
    "add_action('wp_head', function () {\n"
    "    echo '<style id=\"pressluft-fixture-red-header\">'\n"
    "        . 'header.wp-block-template-part, .wp-site-blocks > header, #masthead, .site-header'\n"
    "        . '{background:#d00 !important;}'\n"
    "        . 'header.wp-block-template-part .wp-block-site-title a, .site-title a'\n"
    "        . '{color:#fff !important;}</style>';\n"
    "});\n"
)


def fixtures(root):
    """v1.0 and v1.1 (harmless: nothing visible changes); v1.2 turns the theme's header red (a
    visible change, nothing else); v2.0 "broken": on load it records that it ran, then dies."""
    d = os.path.join(root, "fixtures")
    plugin_zip(os.path.join(d, "1.0.zip"), "1.0", "defined('ABSPATH') || exit;\n")
    plugin_zip(os.path.join(d, "1.1.zip"), "1.1", "defined('ABSPATH') || exit;\n")
    plugin_zip(os.path.join(d, "1.2.zip"), "1.2", "defined('ABSPATH') || exit;\n" + RED_HEADER)
    plugin_zip(os.path.join(d, "2.0.zip"), "2.0",
               "defined('ABSPATH') || exit;\nupdate_option('pressluft_fixture_v2_ran', '1');\n"
               "pressluft_fixture_v2_undefined_function();\n")


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("serve", "fixtures"):
        sys.exit(__doc__)
    root = os.path.abspath(sys.argv[2])
    if sys.argv[1] == "fixtures":
        fixtures(root)
        return
    Feed.root = root
    server = ThreadingHTTPServer(("127.0.0.1", 0), Feed)
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
