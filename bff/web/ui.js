// Small DOM helpers and formats shared by the screens. Text always goes in as text nodes, never as
// HTML: names and topics come from other people.

// h('p', {class: 'x', onclick: f}, 'text', child…): an element. Attributes starting with "on" are
// listeners; null and false children are skipped; true-valued attributes are set empty.
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith('on')) el.addEventListener(key.slice(2), value);
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

// A person's display name from a user object (first and last name, else @username, else the id).
export function personName(user, fallbackId) {
  if (user) {
    const name = [user.first_name, user.last_name].filter(Boolean).join(' ');
    if (name) return name;
    if (user.username) return `@${user.username}`;
  }
  return fallbackId ? `#${fallbackId}` : 'Unknown';
}

const dateFmt = new Intl.DateTimeFormat(undefined, { weekday: 'short', day: 'numeric', month: 'short' });
const timeFmt = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });

export function formatDay(iso) {
  return dateFmt.format(new Date(iso));
}

export function formatTime(iso) {
  return timeFmt.format(new Date(iso));
}

// "Tue, 3 Dec, 10:00–11:00"
export function formatSlot(lesson) {
  const end = lesson.ends_at ? `–${formatTime(lesson.ends_at)}` : '';
  return `${formatDay(lesson.starts_at)}, ${formatTime(lesson.starts_at)}${end}`;
}

// A lesson as a list item: when, topic, and what else is known about it.
export function lessonItem(lesson, extra, onclick) {
  const cancelled = lesson.status === 'cancelled';
  const body = [
    h('time', { datetime: lesson.starts_at, class: 'when' }, formatSlot(lesson)),
    h('span', { class: 'topic' }, lesson.topic || 'Lesson'),
    extra ? h('span', { class: 'muted' }, extra) : null,
    cancelled ? h('span', { class: 'tag warn' }, 'cancelled') : null,
  ];
  return h(
    'li',
    { class: `lesson${cancelled ? ' cancelled' : ''}`, dataset: { lessonId: lesson.id } },
    onclick ? h('button', { type: 'button', class: 'row', onclick }, body) : body,
  );
}

// A screen's heading (focused on arrival, for screen readers) and an optional sub-line.
export function title(text, sub) {
  return [h('h1', { tabindex: '-1' }, text), sub ? h('p', { class: 'muted sub' }, sub) : null];
}

// A titled part of a view: a note when it did not arrive (items null), `empty` when it has no items,
// else a list (id listId) of item(x) for each.
export function section(heading, items, { listId, missing, missingId, empty, item }) {
  let body;
  if (items === null) body = h('p', { class: 'note warn', role: 'note', id: missingId }, missing);
  else if (items.length === 0) body = h('p', { class: 'muted' }, empty);
  else body = h('ul', { class: 'list', id: listId }, items.map(item));
  return [h('h2', {}, heading), body];
}

// A note that part of a view did not arrive.
export function partialNote(what) {
  return h('p', { class: 'note warn', role: 'note' }, what);
}

// A short-lived message in the status line (also read by screen readers).
let statusTimer = 0;
export function say(text, kind) {
  const el = document.getElementById('status');
  el.textContent = text;
  el.className = `status ${kind || ''} shown`;
  clearTimeout(statusTimer);
  statusTimer = setTimeout(() => {
    el.className = 'status';
  }, 4000);
}

// The date input's value (yyyy-mm-dd) of a Date, in local time.
export function dateValue(d) {
  const pad = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}
