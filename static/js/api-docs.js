// /api/docs: start the vendored Swagger UI on the document named by #swagger-ui's data-url. "Try it out"
// requests carry this page's CSRF token, so they work with the browser session as well as with a token.
(function () {
  "use strict";
  var root = document.getElementById("swagger-ui");
  var csrf = document.querySelector('meta[name="csrf-token"]');
  window.ui = window.SwaggerUIBundle({
    url: root.dataset.url,
    domNode: root,
    // Off: a deep link puts an anchor inside each operation's toggle button (nested controls, which axe refuses).
    deepLinking: false,
    tryItOutEnabled: false,
    requestInterceptor: function (request) {
      if (csrf) request.headers["X-CSRFToken"] = csrf.content;
      return request;
    },
  });
})();
