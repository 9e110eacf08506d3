#!/bin/sh
# nginx's site configuration in docker-compose, made at container start from
# deploy/nginx/sourcebook.conf (mounted unchanged, so both stay one file):
#   - the application upstream becomes SOURCEBOOK_NGINX_UPSTREAM (compose: web:8000), the
#     MCP server's SOURCEBOOK_NGINX_MCP_UPSTREAM (compose: mcp:8001);
#   - `root` becomes SOURCEBOOK_NGINX_ROOT: the live tree of the brand's directory target,
#     as `manage.py target_directory SLUG` prints it (required: there is no sensible default);
#   - with SOURCEBOOK_TLS=1 the site listens on 443 with TLS (certificates in
#     SOURCEBOOK_TLS_CERTS: fullchain.pem and privkey.pem, e.g. from certbot), and port 80
#     only redirects to https (and answers ACME http-01 challenges from SOURCEBOOK_ACME_ROOT);
#   - the main configuration (SOURCEBOOK_NGINX_MAIN) loads njs for sourcebook.js.
# Then it runs its arguments (nginx -g 'daemon off;'). tests/test_deploy_files.py runs it too.
set -eu
conf=${SOURCEBOOK_NGINX_CONF:-/etc/sourcebook/nginx/sourcebook.conf}
out=${SOURCEBOOK_NGINX_OUT:-/etc/nginx/conf.d/default.conf}
root=${SOURCEBOOK_NGINX_ROOT:-}
upstream=${SOURCEBOOK_NGINX_UPSTREAM:-127.0.0.1:8000}
mcp_upstream=${SOURCEBOOK_NGINX_MCP_UPSTREAM:-127.0.0.1:8001}
tls=${SOURCEBOOK_TLS:-0}
certs=${SOURCEBOOK_TLS_CERTS:-/etc/nginx/certs}
acme=${SOURCEBOOK_ACME_ROOT:-/srv/sourcebook/acme}

fail() {
    echo "sourcebook-site.sh: $*" >&2
    exit 1
}
[ -n "$root" ] || fail "set SOURCEBOOK_NGINX_ROOT to the directory 'manage.py target_directory SLUG' printed"
for path in "$root" "$certs" "$acme"; do
    case $path in
        /*) ;;
        *) fail "$path is not an absolute path" ;;
    esac
    case $path in
        *[!A-Za-z0-9/._-]*) fail "$path: only letters, digits and / . _ - are accepted" ;;
    esac
done
case $upstream in
    *[!A-Za-z0-9.:_-]*) fail "SOURCEBOOK_NGINX_UPSTREAM=$upstream is not host:port" ;;
esac
case $mcp_upstream in
    *[!A-Za-z0-9.:_-]*) fail "SOURCEBOOK_NGINX_MCP_UPSTREAM=$mcp_upstream is not host:port" ;;
esac
grep -q '^    server 127.0.0.1:8000;$' "$conf" \
    || fail "$conf has no '    server 127.0.0.1:8000;' line to replace"
grep -q '^    server 127.0.0.1:8001;$' "$conf" \
    || fail "$conf has no '    server 127.0.0.1:8001;' line to replace"
grep -q '^    listen 80;$' "$conf" || fail "$conf has no '    listen 80;' line to replace"
grep -q '^    root [^;]*;$' "$conf" || fail "$conf has no '    root ...;' line to replace"

case $tls in
    1)
        for file in fullchain.pem privkey.pem; do
            [ -r "$certs/$file" ] || fail "SOURCEBOOK_TLS=1 but $certs/$file is missing (deploy/certs/$file)"
        done
        listen="listen 443 ssl; ssl_certificate $certs/fullchain.pem; ssl_certificate_key $certs/privkey.pem; ssl_protocols TLSv1.2 TLSv1.3; ssl_session_cache shared:sourcebook_tls:10m; ssl_session_timeout 1d;"
        ;;
    0) listen="listen 80;" ;;
    *) fail "SOURCEBOOK_TLS=$tls: use 1 (https on 443) or 0 (plain http on 80, local only)" ;;
esac

sed -e "s|^    server 127.0.0.1:8000;\$|    server $upstream;|" \
    -e "s|^    server 127.0.0.1:8001;\$|    server $mcp_upstream;|" \
    -e "s|^    listen 80;\$|    $listen|" \
    -e "s|^    root [^;]*;\$|    root $root;|" \
    "$conf" > "$out"

# sourcebook.js runs in njs, which the official nginx image ships but does not load (Debian's
# package loads it from modules-enabled): the main configuration loads it once.
main=${SOURCEBOOK_NGINX_MAIN:-/etc/nginx/nginx.conf}
enabled=/etc/nginx/modules-enabled
if [ -f "$main" ] && ! grep -q ngx_http_js_module "$main" \
    && ! { grep -q "^include $enabled/" "$main" && grep -qs ngx_http_js_module "$enabled"/*.conf; }
then
    { echo "load_module modules/ngx_http_js_module.so;"; cat "$main"; } > "$main.sourcebook"
    cat "$main.sourcebook" > "$main"
    rm -f "$main.sourcebook"
fi

if [ "$tls" = 1 ]; then
    cat >> "$out" <<REDIRECT

# Plain http: ACME http-01 challenges (certbot --webroot -w $acme), else a redirect to https.
server {
    listen 80 default_server;
    server_name _;
    server_tokens off;
    location ^~ /.well-known/acme-challenge/ {
        root $acme;
        default_type text/plain;
    }
    location / {
        return 301 https://\$host\$request_uri;
    }
}
REDIRECT
fi

if [ "$#" -gt 0 ]; then
    exec "$@"
fi
