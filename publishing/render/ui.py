"""The few words the published site says itself, per language (English as the fallback)."""

from __future__ import annotations

STRINGS: dict[str, dict[str, str]] = {
    "en": {
        "home": "Home",
        "faq": "Frequently asked questions",
        "facts": "Facts and figures",
        "key_facts": "Key facts",
        "source": "Source",
        "as_of": "as of",
        "valid_until": "valid until",
        "value": "Value",
        "offers": "Prices",
        "questions_about": "Questions",
        "facts_about": "Facts",
        "about": "About",
        "address": "Address",
        "page": "Page",
        "next": "Next page",
        "previous": "Previous page",
        "languages": "Languages",
        "markdown": "This page as Markdown",
        "products": "Products",
        "stores": "Stores",
        "people": "People",
        "events": "Events",
        "services": "Services",
        "guides": "Guides",
        "recipes": "Recipes",
        "articles": "Articles",
        "jobs": "Jobs",
        "courses": "Courses",
        "brands": "Brands",
        "organizations": "Organizations",
        "details": "Details",
        "opening_hours": "Opening hours",
        "contact": "Contact",
        "same_as": "Elsewhere",
        "founded": "Founded",
        "founder": "Founder",
        "optional": "Optional",
        "sitemap": "Sitemap",
        "full_text": "Full text of this site",
        "graph": "The brand's knowledge graph as JSON-LD",
        "llms_info": "Everything below links to clean Markdown versions of the pages of {site}. "
        "Facts carry their sources and dates. Content is also available in: {languages}.",
        "llms_part": "part",
        "full_text_note": "every page of this site in one Markdown file",
        "graph_note": "all entities, facts and FAQs as schema.org JSON-LD, in every language",
        "sitemap_note": "every page with its translations and the date it last changed",
    },
    "zh-Hans": {
        "home": "首页",
        "faq": "常见问题",
        "facts": "事实与数据",
        "key_facts": "关键事实",
        "source": "来源",
        "as_of": "截至",
        "valid_until": "有效期至",
        "value": "数值",
        "offers": "价格",
        "questions_about": "问题",
        "facts_about": "事实",
        "about": "关于",
        "address": "地址",
        "page": "页",
        "next": "下一页",
        "previous": "上一页",
        "languages": "语言",
        "markdown": "本页的 Markdown 版本",
        "products": "产品",
        "stores": "门店",
        "people": "人物",
        "events": "活动",
        "services": "服务",
        "guides": "指南",
        "recipes": "食谱",
        "articles": "文章",
        "jobs": "招聘",
        "courses": "课程",
        "brands": "品牌",
        "organizations": "机构",
        "details": "详情",
        "opening_hours": "营业时间",
        "contact": "联系方式",
        "same_as": "其他平台",
        "founded": "创立于",
        "founder": "创始人",
        "optional": "Optional",
        "sitemap": "网站地图",
        "full_text": "本站全文",
        "graph": "品牌知识图谱（JSON-LD）",
        "llms_info": "以下链接指向{site}各页面的 Markdown 版本。事实均附有来源和日期。"
        "其他语言版本：{languages}。",
        "llms_part": "第",
        "full_text_note": "本站所有页面合并为一个 Markdown 文件",
        "graph_note": "全部实体、事实与常见问题的 schema.org JSON-LD，含所有语言",
        "sitemap_note": "所有页面及其译文和最后修改日期",
    },
}

LANGUAGE_NAMES = {"en": "English", "zh-Hans": "简体中文", "zh-Hant": "繁體中文", "de": "Deutsch",
                  "fr": "Français", "es": "Español", "ja": "日本語", "ko": "한국어"}  # fmt: skip


def ui(language: str, key: str) -> str:
    for candidate in (language, language.split("-")[0], "en"):
        if candidate in STRINGS and key in STRINGS[candidate]:
            return STRINGS[candidate][key]
    return key


def language_name(tag: str) -> str:
    return LANGUAGE_NAMES.get(tag, tag)


# Labels of common schema.org properties and enumeration members in languages other than
# English (English labels come from the vocabulary itself).
PROPERTY_LABELS: dict[str, dict[str, str]] = {
    "zh-Hans": {
        "additionalProperty": "属性", "address": "地址", "alternateName": "别名",
        "areaServed": "服务地区", "award": "奖项", "birthPlace": "出生地", "brand": "品牌",
        "category": "类别", "contactPoint": "联系方式", "countryOfOrigin": "原产国",
        "currenciesAccepted": "接受货币", "email": "邮箱", "employee": "员工",
        "familyName": "姓", "founder": "创始人", "foundingDate": "创立日期",
        "foundingLocation": "创立地点", "geo": "坐标", "givenName": "名", "gtin13": "GTIN-13",
        "jobTitle": "职位", "knowsAbout": "专长", "knowsLanguage": "语言", "legalName": "法定名称",
        "manufacturer": "制造商", "numberOfEmployees": "员工人数",
        "openingHoursSpecification": "营业时间", "parentOrganization": "所属机构",
        "paymentAccepted": "支付方式", "priceRange": "价格区间", "sku": "SKU", "slogan": "口号",
        "taxID": "税号", "telephone": "电话", "vatID": "增值税号", "weight": "重量",
        "worksFor": "任职于",
    },
}  # fmt: skip
MEMBER_LABELS: dict[str, dict[str, str]] = {
    "zh-Hans": {
        "InStock": "有货", "OutOfStock": "缺货", "PreOrder": "预订", "BackOrder": "可预订补货",
        "LimitedAvailability": "限量供应", "SoldOut": "售罄", "Discontinued": "已停产",
        "NewCondition": "全新", "UsedCondition": "二手", "Monday": "周一", "Tuesday": "周二",
        "Wednesday": "周三", "Thursday": "周四", "Friday": "周五", "Saturday": "周六",
        "Sunday": "周日", "PublicHolidays": "公众假期", "OnlineOnly": "仅限线上",
        "InStoreOnly": "仅限门店", "Reserved": "已预留", "MadeToOrder": "按订单制作",
        "RefurbishedCondition": "翻新", "DamagedCondition": "有损",
        "MerchantReturnFiniteReturnWindow": "限期内可退货",
        "MerchantReturnNotPermitted": "不可退货", "MerchantReturnUnlimitedWindow": "不限期退货",
        "FreeReturn": "免费退货", "ReturnByMail": "邮寄退货", "ReturnInStore": "到店退货",
        "ReturnShippingFees": "买家承担退货运费", "FullRefund": "全额退款",
        "StoreCreditRefund": "退为店铺积分", "ExchangeRefund": "换货",
        "EventScheduled": "按期举行", "EventCancelled": "已取消", "EventPostponed": "已延期",
        "EventRescheduled": "已改期", "EventMovedOnline": "改为线上",
        "OnlineEventAttendanceMode": "线上", "OfflineEventAttendanceMode": "线下",
        "MixedEventAttendanceMode": "线上线下结合", "VeganDiet": "纯素",
        "VegetarianDiet": "素食", "GlutenFreeDiet": "无麸质", "HalalDiet": "清真",
        "KosherDiet": "犹太洁食", "LowLactoseDiet": "低乳糖", "LowSaltDiet": "低盐",
        "CreditCard": "信用卡", "Cash": "现金", "ByBankTransferInAdvance": "预先银行转账",
    },
}  # fmt: skip


def property_label(language: str, prop: str, english: str) -> str:
    return PROPERTY_LABELS.get(language, {}).get(prop, english)


def member_label(language: str, member: str, english: str) -> str:
    return MEMBER_LABELS.get(language, {}).get(member, english)
