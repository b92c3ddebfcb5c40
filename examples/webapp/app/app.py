#!/usr/bin/python3
"""A guest book over HTTP, kept in PostgreSQL.

POST /entries (the body is the text) adds a row and answers it as JSON; GET /entries answers
every row; GET /healthz answers 200 while the process serves (it does not touch the database,
so a database restart does not make the app unhealthy). One connection per request: after the
database restarts, the next request simply connects again.
"""
import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg2

DSN = dict(
    host=os.environ.get("DATABASE_HOST", "db"),
    dbname=os.environ.get("DATABASE_NAME", "webapp"),
    user=os.environ.get("DATABASE_USER", "webapp"),
    password=os.environ.get("DATABASE_PASSWORD", ""),
    connect_timeout=5,
)
SCHEMA = """CREATE TABLE IF NOT EXISTS entries (
  id serial PRIMARY KEY,
  text text NOT NULL,
  created timestamptz NOT NULL DEFAULT now())"""


def query(sql, args=()):
    conn = psycopg2.connect(**DSN)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(sql, args)
            return cur.fetchall() if cur.description else []
    finally:
        conn.close()


def row(r):
    return {"id": r[0], "text": r[1], "created": r[2].isoformat()}


class Handler(BaseHTTPRequestHandler):
    def reply(self, code, body):
        data = (json.dumps(body) + "\n").encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/healthz":
            return self.reply(200, {"status": "ok"})
        if self.path != "/entries":
            return self.reply(404, {"error": "not found: " + self.path})
        try:
            rows = query("SELECT id, text, created FROM entries ORDER BY id")
        except psycopg2.Error as e:
            return self.reply(503, {"error": "database: " + str(e).strip()})
        self.reply(200, [row(r) for r in rows])

    def do_POST(self):
        if self.path != "/entries":
            return self.reply(404, {"error": "not found: " + self.path})
        length = int(self.headers.get("Content-Length") or 0)
        text = self.rfile.read(length).decode("utf-8", "replace")
        if not text:
            return self.reply(400, {"error": "empty body: POST the text of the entry"})
        try:
            rows = query("INSERT INTO entries (text) VALUES (%s) RETURNING id, text, created", (text,))
        except psycopg2.Error as e:
            return self.reply(503, {"error": "database: " + str(e).strip()})
        self.reply(201, row(rows[0]))

    def log_message(self, fmt, *args):
        sys.stdout.write("%s %s\n" % (self.address_string(), fmt % args))
        sys.stdout.flush()


def main():
    # db is healthy before app starts (depends_on), so the schema is made once, here.
    query(SCHEMA)
    port = int(os.environ.get("PORT", "8000"))
    print("app: serving on :%d, database %s@%s" % (port, DSN["dbname"], DSN["host"]), flush=True)
    ThreadingHTTPServer(("", port), Handler).serve_forever()


if __name__ == "__main__":
    main()
