// The one place that talks to Telegram's WebApp object (telegram-web-app.js in production; the
// development page and the browser tests put tg-stub.js in its place). The rest of the app asks
// this module for the init data, the theme and the two native buttons.

const webApp = window.Telegram && window.Telegram.WebApp;

// The raw init data the BFF checks ("" outside Telegram).
export const initData = (webApp && webApp.initData) || '';

// Who Telegram says we are (unchecked: the BFF answers with the checked identity).
export const unsafeUser = (webApp && webApp.initDataUnsafe && webApp.initDataUnsafe.user) || null;

// The `startapp` value of the link that opened the app (an invitation code), or "".
export function startParam() {
  const fromData = webApp && webApp.initDataUnsafe && webApp.initDataUnsafe.start_param;
  if (fromData) return fromData;
  return new URLSearchParams(location.search).get('tgWebAppStartParam') || '';
}

// Telegram's theme as CSS variables (--tg-theme-bg-color, …), now and whenever it changes.
function applyTheme() {
  const params = (webApp && webApp.themeParams) || {};
  const root = document.documentElement.style;
  for (const [key, value] of Object.entries(params)) {
    if (typeof value === 'string' && /^#[0-9a-fA-F]{3,8}$/.test(value)) {
      root.setProperty(`--tg-theme-${key.replace(/_/g, '-')}`, value);
    }
  }
  document.documentElement.dataset.scheme = (webApp && webApp.colorScheme) || 'light';
}

// Tells Telegram the app is ready and takes the whole height.
export function start() {
  applyTheme();
  if (!webApp) return;
  if (webApp.onEvent) webApp.onEvent('themeChanged', applyTheme);
  webApp.ready();
  webApp.expand();
}

// The back button: shown with a handler, hidden with null. One handler at a time.
let backHandler = null;
export function setBack(handler) {
  if (!webApp || !webApp.BackButton) return;
  if (backHandler) webApp.BackButton.offClick(backHandler);
  backHandler = handler;
  if (handler) {
    webApp.BackButton.onClick(handler);
    webApp.BackButton.show();
  } else {
    webApp.BackButton.hide();
  }
}

// The main button: a screen's main action (text and handler), or null to hide it.
let mainHandler = null;
export function setMain(action) {
  const button = webApp && webApp.MainButton;
  if (!button) return;
  if (mainHandler) button.offClick(mainHandler);
  mainHandler = null;
  if (!action) {
    button.hide();
    return;
  }
  mainHandler = async () => {
    if (!button.isActive) return;
    button.disable();
    button.showProgress(false);
    try {
      await action.run();
    } finally {
      button.hideProgress();
      button.enable();
    }
  };
  button.setText(action.text);
  button.onClick(mainHandler);
  button.enable();
  button.show();
}

// A light vibration on success or failure, where Telegram has one.
export function haptic(kind) {
  if (webApp && webApp.HapticFeedback && webApp.isVersionAtLeast && webApp.isVersionAtLeast('6.1')) {
    webApp.HapticFeedback.notificationOccurred(kind);
  }
}

// Opens a Telegram Stars invoice (a checkout's invoice_link); done(status) gets "paid", "cancelled",
// "failed" or "pending". false outside Telegram, where there is no openInvoice.
export function openInvoice(link, done) {
  if (!webApp || typeof webApp.openInvoice !== 'function') return false;
  webApp.openInvoice(link, done);
  return true;
}
