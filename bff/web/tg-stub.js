// A stand-in for Telegram's telegram-web-app.js outside Telegram: the development sign-in page
// (GET /app/dev, DEV_SIGNIN) loads it in place of Telegram's script, and the browser tests serve it
// at Telegram's address. It builds window.Telegram.WebApp from signed init data found in
// window.LS_DEV_INIT_DATA or in <meta name="ls-dev-init-data">, and draws the BackButton and the
// MainButton, which Telegram draws outside the page, as buttons of the page. It fetches nothing.
(function () {
  'use strict';
  var meta = document.querySelector('meta[name="ls-dev-init-data"]');
  var initData = window.LS_DEV_INIT_DATA || (meta && meta.content) || '';
  var params = new URLSearchParams(initData);
  var unsafe = {};
  params.forEach(function (value, key) {
    if (key === 'user') {
      try {
        unsafe.user = JSON.parse(value);
      } catch (e) {
        unsafe.user = null;
      }
    } else if (key !== 'hash') {
      unsafe[key] = value;
    }
  });

  var calls = { ready: 0, expand: 0 };

  // A button drawn in the page: fixed at the top (back) or the bottom (main).
  function pageButton(id, text) {
    var el = document.createElement('button');
    el.type = 'button';
    el.id = id;
    el.className = 'tg-stub-button';
    el.textContent = text;
    el.hidden = true;
    var handlers = [];
    el.addEventListener('click', function () {
      handlers.slice().forEach(function (f) { f(); });
    });
    function attach() {
      if (!el.isConnected) document.body.append(el);
    }
    if (document.body) attach();
    else document.addEventListener('DOMContentLoaded', attach);
    return { el: el, handlers: handlers };
  }

  // What Telegram's BackButton and MainButton have in common, for a page button b.
  function buttonApi(b) {
    var api = {
      isVisible: false,
      onClick: function (f) { b.handlers.push(f); return api; },
      offClick: function (f) {
        var i = b.handlers.indexOf(f);
        if (i >= 0) b.handlers.splice(i, 1);
        return api;
      },
      show: function () { api.isVisible = true; b.el.hidden = false; return api; },
      hide: function () { api.isVisible = false; b.el.hidden = true; return api; },
    };
    return api;
  }

  var BackButton = buttonApi(pageButton('tg-back', '‹ Back'));
  var main = pageButton('tg-main', '');
  var MainButton = Object.assign(buttonApi(main), {
    text: '',
    isActive: true,
    isProgressVisible: false,
    setText: function (t) { MainButton.text = t; main.el.textContent = t; return MainButton; },
    enable: function () { MainButton.isActive = true; main.el.disabled = false; return MainButton; },
    disable: function () { MainButton.isActive = false; main.el.disabled = true; return MainButton; },
    showProgress: function () { MainButton.isProgressVisible = true; main.el.setAttribute('aria-busy', 'true'); return MainButton; },
    hideProgress: function () { MainButton.isProgressVisible = false; main.el.removeAttribute('aria-busy'); return MainButton; },
    setParams: function (p) {
      if (p.text !== undefined) MainButton.setText(p.text);
      if (p.is_visible !== undefined) (p.is_visible ? MainButton.show : MainButton.hide)();
      if (p.is_active !== undefined) (p.is_active ? MainButton.enable : MainButton.disable)();
      return MainButton;
    },
  });

  window.Telegram = {
    WebApp: {
      initData: initData,
      initDataUnsafe: unsafe,
      version: '7.0',
      platform: 'stub',
      colorScheme: 'light',
      themeParams: {
        bg_color: '#ffffff',
        text_color: '#1b1b1f',
        hint_color: '#6b6f76',
        link_color: '#2566c8',
        button_color: '#2f7de1',
        button_text_color: '#ffffff',
        secondary_bg_color: '#f1f3f6',
      },
      isExpanded: false,
      BackButton: BackButton,
      MainButton: MainButton,
      HapticFeedback: {
        impactOccurred: function () {},
        notificationOccurred: function () {},
        selectionChanged: function () {},
      },
      isVersionAtLeast: function () { return true; },
      ready: function () { calls.ready++; },
      expand: function () { calls.expand++; window.Telegram.WebApp.isExpanded = true; },
      onEvent: function () {},
      offEvent: function () {},
      close: function () {},
      stubCalls: calls, // for the tests: how often ready() and expand() were called
    },
  };
})();
