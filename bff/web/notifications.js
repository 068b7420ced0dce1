// Notifications (unread first), marking one or all read, and the settings: which kinds to get and
// the quiet hours during which Telegram messages wait.

import { api } from './api.js';
import { h, title, say, formatDay, formatTime } from './ui.js';

const kinds = {
  lesson_scheduled: 'New lessons',
  lesson_rescheduled: 'Moved lessons',
  lesson_cancelled: 'Cancelled lessons',
  lesson_reminder: 'Lesson reminders',
  group_joined: 'Someone joined my group',
  enrollment: 'Enrollments',
  payment: 'Payments',
  registration: 'Welcome message',
};

export async function notifications(app) {
  const list = await api('GET', '/notifications?limit=50');
  const nodes = [title('Notifications', list.unread === 1 ? '1 unread' : `${list.unread} unread`)];
  nodes.push(h('button', { type: 'button', class: 'btn secondary', id: 'open-settings', onclick: () => app.go('settings') }, 'Settings'));
  if (list.notifications.length === 0) {
    nodes.push(h('p', { class: 'muted' }, 'Nothing yet.'));
    return { nodes };
  }
  nodes.push(h('ul', { class: 'list', id: 'notifications' }, list.notifications.map((n) => {
    const item = h('li', { class: `notification ${n.is_read ? 'read' : 'unread'}`, dataset: { id: n.id } },
      h('strong', {}, n.title),
      h('span', {}, n.body),
      h('time', { class: 'muted', datetime: n.created_at }, `${formatDay(n.created_at)}, ${formatTime(n.created_at)}`));
    if (!n.is_read) {
      const button = h('button', { type: 'button', class: 'chip mark-read' }, 'Mark read');
      button.addEventListener('click', async () => {
        try {
          await api('POST', `/notifications/${n.id}/read`);
          item.className = 'notification read';
          button.remove();
          await app.refreshBadge();
        } catch (e) {
          say(`Not marked: ${e.message}`, 'error');
        }
      });
      item.append(button);
    }
    return item;
  })));
  const readAll = async () => {
    try {
      const { marked } = await api('POST', '/notifications/read_all');
      say(marked === 1 ? '1 notification marked read.' : `${marked} notifications marked read.`, 'ok');
      await app.refreshBadge();
      await app.reload();
    } catch (e) {
      say(`Not marked: ${e.message}`, 'error');
    }
  };
  return { nodes, main: list.unread > 0 ? { text: 'Mark all read', run: readAll } : null };
}

export async function settings() {
  const s = await api('GET', '/notifications/settings');
  const disabled = new Set(s.disabled_types || []);
  const quiet = s.quiet_hours;
  const zone = s.timezone && s.timezone !== 'UTC' ? s.timezone : Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
  const form = h('form', { class: 'form', id: 'settings-form', onsubmit: (e) => e.preventDefault() },
    h('fieldset', {}, h('legend', {}, 'Notify me about'),
      Object.entries(kinds).map(([type, label]) =>
        h('label', { class: 'check' }, h('input', { type: 'checkbox', name: 'type', value: type, checked: !disabled.has(type) }), label))),
    h('fieldset', {}, h('legend', {}, 'Quiet hours'),
      h('label', { class: 'check' }, h('input', { type: 'checkbox', name: 'quiet', checked: Boolean(quiet) }), 'Hold messages during these hours'),
      h('label', {}, 'From', h('input', { type: 'time', name: 'from', value: quiet ? quiet.from : '22:00' })),
      h('label', {}, 'To', h('input', { type: 'time', name: 'to', value: quiet ? quiet.to : '08:00' })),
      h('label', {}, 'Time zone', h('input', { type: 'text', name: 'timezone', value: zone, autocomplete: 'off' }))));
  const save = async () => {
    const f = new FormData(form);
    const on = new Set(f.getAll('type'));
    const body = {
      disabled_types: Object.keys(kinds).filter((t) => !on.has(t)),
      quiet_hours: f.get('quiet') ? { from: f.get('from'), to: f.get('to') } : null,
      timezone: String(f.get('timezone') || 'UTC'),
    };
    try {
      await api('PUT', '/notifications/settings', body);
      say('Settings saved.', 'ok');
    } catch (e) {
      say(`Not saved: ${e.message}`, 'error');
    }
  };
  return {
    nodes: [title('Notification settings'), form, h('button', { type: 'button', class: 'btn secondary', onclick: save }, 'Save')],
    main: { text: 'Save settings', run: save },
  };
}
