// Finding a group (GET /api/catalogue/groups, issue 16) and buying a seat in a paid one
// (POST /api/groups/{id}/checkout, then Telegram's invoice with openInvoice).

import { api } from './api.js';
import * as tg from './tg.js';
import { h, title, personName, say } from './ui.js';

const languages = { '': 'Any language', en: 'English', de: 'German', fr: 'French', es: 'Spanish', it: 'Italian', ru: 'Russian' };
const levels = ['', 'A1', 'A2', 'B1', 'B2', 'C1', 'C2'];
const PAGE = 20;

// Pays for a seat: the checkout's invoice link opened in Telegram; a paid invoice makes the school
// add the member shortly after (payment-service's outbox), so the profile is shown a moment later.
export async function checkout(app, path) {
  let inv;
  try {
    inv = await api('POST', path);
  } catch (e) {
    say(`The payment could not start: ${e.message}`, 'error');
    return;
  }
  const opened = tg.openInvoice(inv.invoice_link, (status) => {
    if (status === 'paid') {
      tg.haptic('success');
      say('Paid. You will be in the group in a moment.', 'ok');
      setTimeout(() => app.tab('profile'), 1500);
    } else if (status === 'failed') {
      say('The payment failed.', 'error');
    }
  });
  if (!opened) say(`Payments open inside Telegram: ${inv.invoice_link}`, 'error');
}

function groupItem(app, g) {
  const price = g.is_free ? 'Free' : `${g.price} ⭐`;
  const seats = g.free_seats > 0 ? `${g.free_seats} seats left` : 'full';
  const teacher = g.teacher ? personName(g.teacher, g.teacher.telegram_id) : '';
  return h('li', { class: 'member', dataset: { groupId: g.id } },
    h('span', { class: 'topic' }, g.title),
    h('span', { class: 'muted' }, `${(g.language_code || '').toUpperCase()} ${g.level || ''} · ${teacher} · ${seats}`),
    h('span', { class: 'tag' }, price),
    g.is_free
      ? h('span', { class: 'muted' }, 'Ask the teacher for an invitation link.')
      : h('button', { type: 'button', class: 'chip', disabled: g.free_seats <= 0,
        onclick: () => checkout(app, `/groups/${g.id}/checkout`) }, 'Buy a seat'));
}

export async function catalogue(app, { q = '', language = '', level = '', offset = 0 }) {
  const query = new URLSearchParams({ limit: String(PAGE), offset: String(offset) });
  if (q) query.set('q', q);
  if (language) query.set('language', language);
  if (level) query.set('level', level);
  const found = await api('GET', `/catalogue/groups?${query}`);
  const form = h('form', { class: 'form', id: 'catalogue-form', role: 'search' },
    h('label', {}, 'Search', h('input', { type: 'search', name: 'q', value: q, maxlength: 100 })),
    h('label', {}, 'Language', h('select', { name: 'language' },
      Object.entries(languages).map(([code, name]) => h('option', { value: code, selected: code === language }, name)))),
    h('label', {}, 'Level', h('select', { name: 'level' },
      levels.map((l) => h('option', { value: l, selected: l === level }, l || 'Any level')))));
  const search = () => {
    const f = new FormData(form);
    app.replace('catalogue', { q: String(f.get('q') || ''), language: String(f.get('language')), level: String(f.get('level')) });
  };
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    search();
  });
  const nodes = [title('Find a group'), form];
  if (found.partial) nodes.push(h('p', { class: 'note warn' }, 'Teachers\' names are missing for now.'));
  nodes.push(found.groups.length === 0
    ? h('p', { class: 'muted' }, 'No group matches.')
    : h('ul', { class: 'list', id: 'catalogue' }, found.groups.map((g) => groupItem(app, g))));
  if (found.next_offset !== null && found.next_offset !== undefined) {
    nodes.push(h('button', { type: 'button', class: 'btn secondary', onclick: () => app.replace('catalogue', { q, language, level, offset: found.next_offset }) }, 'More'));
  }
  return { nodes, main: { text: 'Search', run: search } };
}
