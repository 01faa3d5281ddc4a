"""The counter screen's fixed words in Chinese, keyed by the English text (an English screen reads them as they are).

Names the config gives (items, cooking methods, allergens, stations) come from `kds.i18n`, not from here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from textual.dom import DOMNode

from kds.i18n import COMMON, Words

WORDS = Words(
    {
        # intake: the item form
        "Item: SKU, barcode or name (EN/中文)": "商品:编码、条码或名称 (EN/中文)",
        "scan or type, Enter": "扫码或输入,回车",
        "Weight": "重量",
        "Weight (g)": "重量 (克)",
        "800 or 0.8kg": "800 或 0.8kg",
        "Not a weight yet: fix it (red above), Enter.": "重量有误:请按上方红字修改,回车。",
        "Not added: fix the fields marked in red.": "未加入:请修改标红的栏位。",
        "Type the quantity (1 to 99), Enter.": "请输入数量 (1 至 99),回车。",
        "Pick an allergen from the list, or clear the field.": "请从列表中选择过敏原,或清空此栏。",
        "Cooking method (processing fee)": "加工方式 (加工费)",
        "Cooking method: none for this item": "加工方式:此商品无需加工",
        "Qty": "数量",
        "Item note": "商品备注",
        "e.g. cut in half, less salt": "如:切半、少盐",
        "Allergies": "过敏原",
        "type to pick (↓ list)": "输入后选择 (↓ 列表)",
        "Order note": "订单备注",
        "Dine-in": "堂食",
        "Pickup": "自取",
        "table number": "桌号",
        "pickup: no table": "自取:无需桌号",
        "contains": "含",
        "each": "每份",
        "fee": "加工费",
        "fees": "加工费",
        "fee: choose a method": "加工费:请选择加工方式",
        "total": "合计",
        "weigh it for the price": "称重后计价",
        "tag": "标签",
        "tags": "标签",
        "note": "备注",
        "New order": "新订单",
        "{n} item": "{n} 件",
        "{n} items": "{n} 件",
        "table {table}": "{table} 号桌",
        "no table yet": "未填桌号",
        # intake: what Enter did, what comes next
        "Weigh it: grams (800) or kilograms with the unit (0.8kg), Enter.": "称重:克 (800) 或带单位的公斤 (0.8kg),回车。",  # noqa: E501
        "Choose the cooking method: ↑/↓, Enter.": "选择加工方式:↑/↓,回车。",
        "Quantity, Enter; F4 adds the item.": "数量,回车;F4 加入商品。",
        "{grams} g ✓ — now the cooking method: ↑/↓, Enter.": "{grams} 克 ✓ — 请选择加工方式:↑/↓,回车。",
        "{grams} g ✓ — item note (optional), Enter.": "{grams} 克 ✓ — 商品备注 (可选),回车。",
        "{method} ✓ — item note (optional), Enter.": "{method} ✓ — 商品备注 (可选),回车。",
        "{method} ✓ — quantity, Enter.": "{method} ✓ — 数量,回车。",
        "Item note (optional), Enter.": "商品备注 (可选),回车。",
        "no item note": "无商品备注",
        "note ✓": "备注 ✓",
        "the customer's allergies: type to pick from the store's list (↓ shows it); Enter adds the item.": (
            "顾客过敏原:输入后从本店列表中选择 (↓ 显示列表);回车加入商品。"
        ),
        "Took out {name}.": "已移除 {name}。",
        "{name} ✓ — another allergy, or Enter on the empty field adds the item.": (
            "{name} ✓ — 继续选择过敏原,或在空白栏回车加入商品。"
        ),
        "Added {name}": "已加入 {name}",
        "allergies: {names}": "过敏原:{names}",
        "no allergies declared": "未申报过敏原",
        "Next item, or Enter on the empty item field for the table.": "下一件商品,或在空白商品栏回车填写桌号。",
        "No more items: the table number, then Enter sends the order.": "商品已齐:填写桌号,回车下单。",
        "No more items: pickup, Enter in Order note sends the order.": "商品已齐:自取,在订单备注回车下单。",
        # intake: checks
        "scan or type a SKU, barcode or name": "请扫码或输入编码、条码或名称",
        "no catalogue yet: waiting for the hub": "尚无商品目录:等待服务器",
        "unknown SKU or barcode {text!r}": "未知编码或条码 {text!r}",
        "nothing in the catalogue matches {text!r}": "目录中没有与 {text!r} 匹配的商品",
        "find an item first": "请先找到商品",
        "quantity 1 to 99": "数量 1 至 99",
        "{name} is sold by weight: enter the weight (800 = grams, or 0.8kg)": "{name} 按重量出售:请输入重量 (800 = 克,或 0.8kg)",  # noqa: E501
        "{weight} g is outside {lo}–{hi} g for {name}": "{weight} 克超出 {name} 的范围 {lo}–{hi} 克",
        "{name} is not sold by weight": "{name} 不按重量出售",
        "{cook!r} is not a cooking method for {name} (allowed: {allowed})": "{cook!r} 不是 {name} 的加工方式 (可选:{allowed})",  # noqa: E501
        "choose a cooking method for {name}": "请为 {name} 选择加工方式",
        (
            "{text!r} is not one of the store's allergens: pick one from the list (↓); "
            "a request like that goes in Item note"
        ): ("{text!r} 不是本店申报的过敏原:请从列表 (↓) 中选择;此类要求请写在商品备注"),
        "{text!r}: Enter to pick the highlighted allergen, or clear the field": "{text!r}:回车选择高亮的过敏原,或清空此栏",  # noqa: E501
        "the weight must be more than 0 g": "重量必须大于 0 克",
        # intake: the order
        "F4 adds the item · F5 (or Enter in Table) sends the order": "F4 加入商品 · F5 (或在桌号回车) 下单",
        "Add items with F4.": "用 F4 加入商品。",
        "Removed {name}.": "已移除 {name}。",
        "Order {number} accepted": "订单 {number} 已接单",
        "Order {number} sent. Scan the next item, or F3 for the expo list.": "订单 {number} 已发送。扫描下一件商品,或按 F3 查看出餐列表。",  # noqa: E501
        "[b]This order was sent: waiting for the hub's answer.[/b] F6 starts a new order.": (
            "[b]此订单已发送:等待服务器答复。[/b] F6 开始新订单。"
        ),
        # expo
        "Order": "订单",
        "For": "去向",
        "Status": "状态",
        "Stations": "档口",
        "Time": "时间",
        "Alerts": "提醒",
        "READY": "待取餐",
        "CALLED": "已叫号",
        "No open orders.": "没有未完成的订单。",
        "Waiting for the hub…": "等待服务器…",
        # expo: alerts (`Assembly.said`) and times
        "LATE {clock}": "超时 {clock}",
        "WILL MISS DUE": "赶不上送达",
        "held": "暂缓",
        "scheduled": "预约",
        "fired": "已开做",
        "fire": "开做",
        "hold": "暂缓",
        "fired: at its stations now": "已开做:已到各档口",
        "held until fired (f)": "已暂缓,按 f 开做",
        "{number}: nothing of it waits to be fired.": "{number}:没有等待开做的部分。",
        "{number}: nothing of it is left to hold.": "{number}:没有可以暂缓的部分。",
        "Fire now": "立即开做",
        "Hold": "暂缓",
        "{station} late": "{station}超时",
        "{station} slow": "{station}偏慢",
        "waiting {clock}": "已等 {clock}",
        "at {time}": "于 {time}",
        "due in {clock}": "距送达 {clock}",
        "due {due}, {clock} ago": "{due}送达 超{clock}",
        "due {due} in {clock}": "{due}送达 剩{clock}",
        "ready {clock}": "待取 {clock}",
        "age {clock}": "用时 {clock}",
        "from {source}": "来自 {source}",
        "placed {time}": "{time} 下单",
        "{grams} g": "{grams} 克",
        # expo: actions and their answers
        "call": "叫号",
        "recall": "召回",
        "hand over": "交付",
        "print": "打印",
        "hand over to {to}": "交给{to}",
        "customer": "顾客",
        "runner": "传菜员",
        "rider": "骑手",
        "called": "已叫号",
        "recalled: back to READY": "已召回:回到待取餐",
        "handed over to the {to}": "已交给{to}",
        "already handed over": "已取餐",
        "No order selected to {what}.": "未选择要{what}的订单。",
        "[b $warning]OFFLINE:[/] {what} {number} queued, sent when the hub is back.": (
            "[b $warning]离线:[/]{what} {number} 已排队,连上服务器后发送。"
        ),
        "[b $error]✗ {what} {number}:[/] it is not ready ({state}).": (
            "[b $error]✗ {what} {number}:[/]还未备好 ({state})。"
        ),
        "[b $error]✗ {what} {number}:[/] only a handed-over order can be recalled.": (
            "[b $error]✗ {what} {number}:[/]只有已取餐的订单才能召回。"
        ),
        "Printing the {layout} of {number}…": "正在打印 {number} 的{layout}…",
        "{layout} of {number}": "{number} 的{layout}",
        "[b $success]✓[/] {what} sent to the printer": "[b $success]✓[/] {what}已发送到打印机",
        "[b $error]✗ {what} not printed:[/] {problem}": "[b $error]✗ {what}未打印:[/]{problem}",
        # printing (`actions.LAYOUTS`, `actions.request_print`)
        "claim tags": "取货标签",
        "pickup slip": "取餐单",
        "expo slip": "出餐单",
        "station tickets": "档口小票",
        "offline: nothing was printed": "离线:未打印",
        "the hub did not answer: nothing was printed": "服务器无应答:未打印",
        # dialogs
        "Hand over {number} to…": "将 {number} 交给…",
        "Print again for {number}…": "重新打印 {number}…",
        "Customer — picks it up at the counter": "顾客 — 在柜台取餐",
        "Runner — takes it to the table": "传菜员 — 送到餐桌",
        "Rider — delivery": "骑手 — 外送",
        "Expo slip — the whole order": "出餐单 — 整张订单",
        "Pickup slip — for the customer": "取餐单 — 给顾客",
        "Claim tags — for the goods from the tanks": "取货标签 — 鱼缸活鲜",
        "Station tickets — again at each station": "档口小票 — 各档口重新打印",
        "↑/↓ Enter or the letter · Esc cancels": "↑/↓ 回车或按字母 · Esc 取消",
        # intake: weights as typed (`catalogue.parse_weight`)
        "{raw!r} is not a weight: type grams (800) or kilograms with the unit (0.8kg)": (
            "{raw!r} 不是重量:请输入克 (800) 或带单位的公斤 (0.8kg)"
        ),
        "{raw!r}: a plain number is grams; for kilograms add the unit ({number}kg)": (
            "{raw!r}:纯数字按克计;公斤请加单位 ({number}kg)"
        ),
        "{raw!r}: kilograms to the gram at most (3 decimals)": "{raw!r}:公斤最多精确到克 (3 位小数)",
        "{raw!r}: whole grams only": "{raw!r}:只能输入整克",
        "= {grams} g": "= {grams} 克",
        "g": "克",
        "{lo}–{hi} g": "{lo}–{hi} 克",
        # intake: the order's checks (`Draft.problems`)
        "the order has no items yet: add one with F4": "订单还没有商品:用 F4 加入",
        "enter the table number (or choose pickup)": "请填写桌号 (或选择自取)",
        "at most {n} characters": "最多 {n} 个字符",
        # intake: sending and printing
        "[b]Already sent[/b] — waiting for the hub (pressing again cannot make a second order).": (
            "[b]已发送[/b] — 等待服务器答复 (再按也不会重复下单)。"
        ),
        "[b $error]Not sent:[/] the item in the form is not complete (fix it, or Esc to clear).": (
            "[b $error]未发送:[/]表单中的商品未填完整 (请修改,或按 Esc 清空)。"
        ),
        "{text!r} is not an item yet: Enter to pick it, or Esc to clear": "{text!r} 还不是商品:回车选择,或按 Esc 清空",
        "[b $error]Not sent:[/] the item field holds something that is not in the order.": (
            "[b $error]未发送:[/]商品栏中的内容不在订单里。"
        ),
        "[b $error]Not sent:[/] fix the fields marked in red.": "[b $error]未发送:[/]请修改标红的栏位。",
        "Sending…": "发送中…",
        "[b $warning]OFFLINE:[/] the order is queued and sent when the hub is back.": (
            "[b $warning]离线:[/]订单已排队,连上服务器后发送。"
        ),
        "Queued order accepted: {number}": "排队的订单已接单:{number}",
        "A queued order was refused: {words}": "排队的订单被拒绝:{words}",
        "[b $error]The hub refused the order[/] — nothing was stored. Fix it and press F5 again.": (
            "[b $error]服务器拒绝了订单[/] — 未保存。请修改后再按 F5。"
        ),
        "{layout}: printing…": "{layout}:打印中…",
        "No order accepted yet: nothing to print.": "尚无已接单的订单:无可打印。",
        "[b $error]{what} not printed:[/] {problem} — F7 tries again": (
            "[b $error]{what}未打印:[/]{problem} — 按 F7 重试"
        ),
        "[b $warning]{what}: the hub has the job, but {printer} is in trouble[/] (top line)": (
            "[b $warning]{what}:服务器已收到,但 {printer} 有故障[/] (见顶行)"
        ),
        "{what}: sent to the printer ✓ (F7 prints again)": "{what}:已发送到打印机 ✓ (F7 再打印)",
        "[b $warning]F6 again throws away the {n} line of this order.[/]": (
            "[b $warning]再按 F6 将丢弃此订单的 {n} 行。[/]"
        ),
        "[b $warning]F6 again throws away the {n} lines of this order.[/]": (
            "[b $warning]再按 F6 将丢弃此订单的 {n} 行。[/]"
        ),
        "The order sent is still queued: its number shows when the hub answers.": (
            "已发送的订单仍在排队:服务器答复后显示单号。"
        ),
        # the app: notices
        "Back online — resynced ({how}).": "已重新连线 — 已同步 ({how})。",
        "replayed {n} missed events": "补发了 {n} 个错过的事件",
        "fresh snapshot of every open order": "重新载入所有未完成订单",
        "Printer {printer} is back: {message}": "打印机 {printer} 已恢复:{message}",
        "Printer {printer}: {message}": "打印机 {printer}:{message}",
        "ok": "正常",
        "in trouble": "故障",
        # the title line
        "COUNTER": "柜台",
        "intake": "点单",
        "INTAKE": "点单",
        "expo": "出餐",
        "EXPO": "出餐",
        "{n} READY": "{n} 单待取餐",
        "none ready": "无待取餐",
        "trouble": "故障",
        "{n} kitchen printer in trouble": "{n} 台厨房打印机故障",
        "{n} kitchen printers in trouble": "{n} 台厨房打印机故障",
        # keys (footer: `Binding` descriptions)
        "Intake": "点单",
        "Expo": "出餐",
        "Add item": "加入商品",
        "Send order": "下单",
        "Print tag": "打印标签",
        "Dine-in/pickup": "堂食/自取",
        "Clear item": "清空商品",
        "Next match": "下一个",
        "Previous match": "上一个",
        "Next allergen": "下一个",
        "Previous allergen": "上一个",
        "Clear": "清空",
        "Remove line": "删除此行",
        "Call": "叫号",
        "Hand over": "交付",
        "Recall": "召回",
        "Print": "打印",
        "Cancel": "取消",
    },
    parent=COMMON,
)
"""The counter's fixed words: English → Chinese."""


def speak_bindings(node: DOMNode, w: Callable[[str], str]) -> None:
    """Give `node`'s key bindings their descriptions in the screen's language (`w`), for the footer: call it on a
    screen, the app or a widget once it exists and before it is mounted. Only this node's copy changes (the class's
    bindings stay English)."""
    bindings = node._bindings  # Textual keeps a node's own bindings here (a copy of its class's)
    bindings.key_to_bindings = {
        key: [replace(b, description=w(b.description)) if b.description else b for b in group]
        for key, group in bindings.key_to_bindings.items()
    }
