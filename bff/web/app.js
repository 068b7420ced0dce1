// The Mini App: signs in, then shows one screen at a time. Navigation is a stack in memory (the
// URL is Telegram's to keep): Telegram's BackButton pops it, the tabs replace it, and each screen
// may give the MainButton its main action.

import { api, ApiError } from './api.js';
import * as tg from './tg.js';
import { h, say } from './ui.js';
import { profile } from './profile.js';
import { group, newLesson, lesson } from './group.js';
import { week } from './week.js';
import { notifications, settings } from './notifications.js';
import { availability } from './availability.js';
import { catalogue, checkout } from './catalogue.js';

const screens = { profile, group, newLesson, lesson, week, notifications, settings, availability, catalogue };
const tabOf = {
  profile: 'profile', week: 'week', notifications: 'notifications', settings: 'notifications', availability: 'availability', catalogue: 'catalogue',
};

// What the screens share: who we are, names seen so far, and navigation.
const app = {
  me: 0, // the caller's telegram id, as the BFF checked it
  role: 'student',
  user: null,
  names: new Map(), // telegram id → display name, filled by the screens that read names
  stack: [],
  go(name, params) {
    app.stack.push({ name, params: params || {} });
    return show();
  },
  replace(name, params) {
    app.stack[app.stack.length - 1] = { name, params: params || {} };
    return show();
  },
  back() {
    if (app.stack.length > 1) app.stack.pop();
    return show();
  },
  tab(name) {
    app.stack = [{ name, params: {} }];
    return show();
  },
  reload: () => show(),
  refreshBadge,
};

// What an error means to the person using the app.
function errorNodes(e) {
  const status = e instanceof ApiError ? e.status : 0;
  if (status === 401) {
    return [
      h('h1', { tabindex: '-1' }, 'Please reopen the app'),
      h('p', { class: 'note error', dataset: { error: '401' } },
        'Your sign-in is not valid any more. Close the app and reopen it from Telegram.'),
    ];
  }
  const heading = status === 403 ? 'Not allowed' : status === 404 ? 'Not found' : 'Something went wrong';
  const text = status === 403 ? 'You may not see this (403).'
    : status === 404 ? 'This does not exist (any more) (404).'
      : e.message || String(e);
  return [
    h('h1', { tabindex: '-1' }, heading),
    h('p', { class: 'note error', dataset: { error: String(status) } }, text),
    status === 403 || status === 404 ? null : h('button', { type: 'button', class: 'btn', onclick: () => show() }, 'Try again'),
  ];
}

let showing = 0;
async function show() {
  const entry = app.stack[app.stack.length - 1];
  const ticket = ++showing;
  const view = document.getElementById('view');
  view.setAttribute('aria-busy', 'true');
  tg.setMain(null);
  let result;
  try {
    result = await screens[entry.name](app, entry.params);
  } catch (e) {
    result = { nodes: errorNodes(e) };
  }
  if (ticket !== showing) return; // another screen was asked for meanwhile
  view.replaceChildren(...result.nodes.flat().filter(Boolean));
  view.dataset.screen = entry.name;
  view.removeAttribute('aria-busy');
  tg.setMain(result.main || null);
  tg.setBack(app.stack.length > 1 ? () => app.back() : null);
  for (const b of document.querySelectorAll('#tabs button')) {
    b.setAttribute('aria-current', b.dataset.tab === tabOf[entry.name] ? 'page' : 'false');
  }
  const heading = view.querySelector('h1');
  if (heading) heading.focus({ preventScroll: true });
}

async function refreshBadge() {
  const badge = document.getElementById('badge');
  try {
    const { unread } = await api('GET', '/notifications/unread_count');
    badge.textContent = String(unread);
    badge.hidden = unread === 0;
    document.getElementById('bell').setAttribute('aria-label', `Notifications, ${unread} unread`);
  } catch (e) {
    badge.hidden = true;
  }
}

// Opened from an invitation link (startapp=<code>): join, then show the group; a paid group's seat
// is bought first. Once per code and session, so that a reload does not join again.
async function joinFrom(code) {
  const key = `joined:${code}`;
  if (sessionStorage.getItem(key)) return false;
  sessionStorage.setItem(key, '1');
  try {
    const joined = await api('POST', `/join/${encodeURIComponent(code)}`);
    tg.haptic('success');
    say(`You joined ${joined.group.title}.`, 'ok');
    app.stack.push({ name: 'group', params: { id: joined.group.id } });
    return true;
  } catch (e) {
    // A paid group: its seat is bought first (the problem names the checkout).
    if (e.status === 402 && e.problem && typeof e.problem.checkout === 'string') {
      say('This group is paid: buy a seat to join it.', 'ok');
      await checkout(app, e.problem.checkout.replace(/^\/api/, ''));
      return false;
    }
    const why = {
      404: 'This invitation does not exist.',
      409: 'You are already in this group, or it is full or closed.',
      410: 'This invitation has expired or was used up.',
    }[e.status];
    say(why || `Joining failed: ${e.message}`, 'error');
    return false;
  }
}

async function main() {
  tg.start();
  for (const b of document.querySelectorAll('#tabs button')) b.addEventListener('click', () => app.tab(b.dataset.tab));
  document.getElementById('bell').addEventListener('click', () => app.tab('notifications'));
  const view = document.getElementById('view');
  if (!tg.initData) {
    view.replaceChildren(
      h('h1', { tabindex: '-1' }, 'Open it in Telegram'),
      h('p', { class: 'note' }, 'This is a Telegram Mini App: open it from the school\'s bot in Telegram.'),
    );
    return;
  }
  try {
    const signin = await api('POST', '/auth/telegram');
    app.user = signin.user;
    app.me = signin.user.telegram_id;
    app.role = signin.user.role;
  } catch (e) {
    view.replaceChildren(...errorNodes(e).filter(Boolean));
    return;
  }
  document.getElementById('tabs').hidden = false;
  document.querySelector('[data-tab="availability"]').hidden = app.role !== 'teacher';
  app.stack = [{ name: 'profile', params: {} }];
  refreshBadge();
  const code = tg.startParam();
  if (code) await joinFrom(code);
  show();
}

main();
