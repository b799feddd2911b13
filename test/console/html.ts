// The html template escapes every value it is given, except markup it made.
import t from 'tap';
import { escapeHtml, html, join } from '../../console/html.js';

t.test('values are text: markup, quotes and ampersands are escaped', async (t) => {
  const note = `<script>alert("x")</script> & 'y'`;
  t.equal(html`<td>${note}</td>`.text, '<td>&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;y&#39;</td>');
  t.equal(html`<a title="${'" onmouseover="x'}">`.text, '<a title="&quot; onmouseover=&quot;x">', 'an attribute value cannot be left');
  t.equal(escapeHtml('a<b>&"\''), 'a&lt;b&gt;&amp;&quot;&#39;');
});

t.test('markup built by html stays markup; lists join; nothing shows for null, undefined and false', async (t) => {
  const inner = html`<b>${'<i>'}</b>`;
  t.equal(html`<p>${inner}</p>`.text, '<p><b>&lt;i&gt;</b></p>');
  t.equal(html`<ul>${['<a>', html`<li>x</li>`]}</ul>`.text, '<ul>&lt;a&gt;<li>x</li></ul>');
  t.equal(html`[${null}${undefined}${false}${0}]`.text, '[0]');
  t.equal(join(['<x>', html`<y>`], ' / ').text, '&lt;x&gt; / <y>');
});
