from django.contrib import admin
from django.urls import include, path, re_path
from django.views.i18n import JavaScriptCatalog

from config.health import healthz, readyz
from publishing.ask import AskView
from publishing.views import admin_landing, published_site

admin.site.site_header = "Sourcebook"
admin.site.site_title = "Sourcebook"
admin.site.index_title = "Brand knowledge"

urlpatterns = [
    # Under /admin/, which the production web server passes to the application, and before
    # the admin's catch-all: set_language, which the admin's language switcher posts to
    # (templates/admin/base_site.html), and our scripts' messages in the admin's language.
    path("admin/i18n/", include("django.conf.urls.i18n")),
    path("admin/i18n/js/kb/", JavaScriptCatalog.as_view(packages=["kb"]), name="kb_jsi18n"),
    # Before the admin's own index: a brand member's home is the brand's dashboard.
    path("admin/", admin.site.admin_view(admin_landing), name="admin_landing"),
    path("admin/", admin.site.urls),
    path("api/", include("config.api_urls")),
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    # The brand's answer endpoint (NLWeb), at the root of its site as NLWeb places it.
    path("ask", AskView.as_view(), name="ask"),
]
# Uploads (MEDIA_ROOT) are never served as they are: a brand's images are published with the
# pages that show them (under the site's /media/), and the admin shows them to those who may
# see them (publishing.admin MediaAssetAdmin.file_view).
# The published site (development): served at / when SOURCEBOOK_SERVE_SITE names it.
urlpatterns += [re_path(r"^(?P<path>.*)$", published_site)]
